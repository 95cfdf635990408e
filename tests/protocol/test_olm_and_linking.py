from __future__ import annotations

import pytest

from veil.protocol.errors import DecryptionFailed, MalformedData
from veil.protocol.keys import X25519KeyPair
from veil.protocol.linking import LinkCode, LinkRequest, link_key, open_request, seal_request
from veil.protocol.olm import NORMAL, PRE_KEY, OlmAccount, OlmSession


def test_olm_session_both_ways_and_failures_are_uniform() -> None:
    alice, bob = OlmAccount(), OlmAccount()
    _kid, otk = next(iter(bob.generate_one_time_keys(1).items()))
    bob.mark_keys_as_published()
    out = alice.outbound_session(bob.curve25519, otk)
    t, body = out.encrypt(b"hello")
    assert t == PRE_KEY
    inbound, plaintext = bob.inbound_session(alice.curve25519, body)
    assert plaintext == b"hello"
    t2, reply = inbound.encrypt(b"hi back")
    assert t2 == NORMAL and out.decrypt(t2, reply) == b"hi back"
    with pytest.raises(DecryptionFailed):
        out.decrypt(t2, reply)  # replay
    with pytest.raises(DecryptionFailed):
        out.decrypt(NORMAL, b"garbage")
    with pytest.raises(DecryptionFailed):
        bob.inbound_session(alice.curve25519, body)  # the one-time key is used up
    key = bytes(range(32))
    again = OlmSession.from_pickle(out.pickle(key), key)
    assert again.session_id == out.session_id
    with pytest.raises(DecryptionFailed):
        OlmSession.from_pickle(out.pickle(key), bytes(32))


def test_link_code_parses_forgivingly_and_binds_the_secret() -> None:
    code = LinkCode.new("ABCDEFGH")
    assert LinkCode.parse(str(code).lower().replace("-", " ")) == code
    with pytest.raises(MalformedData):
        LinkCode.parse("short")
    a, b = X25519KeyPair(), X25519KeyPair()
    k_new = link_key(b.agree(a.public_b64), code, a.public_b64, b.public_b64)
    sealed = seal_request(k_new, LinkRequest(device_id="D", curve25519="c", ed25519="e"))
    k_old = link_key(a.agree(b.public_b64), code, a.public_b64, b.public_b64)
    assert open_request(k_old, sealed).device_id == "D"
    wrong = LinkCode(link_id="ABCDEFGH", secret=bytes(10))
    with pytest.raises(DecryptionFailed):
        open_request(link_key(a.agree(b.public_b64), wrong, a.public_b64, b.public_b64), sealed)
