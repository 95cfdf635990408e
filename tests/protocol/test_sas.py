from __future__ import annotations

import pytest

from veil.protocol.errors import IllegalState, MalformedData, Mismatch
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.sas import EMOJI_TABLE, SasState, SasVerification

INFO = "VEIL_SAS_V1|txn-1|alice|D1|bob|D7"
MAC_INFO_ALICE = "VEIL_MAC_V1|txn-1|alice|D1|bob|D7|"


def _pair() -> tuple[SasVerification, SasVerification, list[tuple[str, str]], list[tuple[str, str]]]:
    alice, bob = SasVerification(), SasVerification()
    ea = alice.receive_key(bob.public_key, we_started=True, info=INFO)
    eb = bob.receive_key(alice.public_key, we_started=False, info=INFO)
    return alice, bob, ea, eb


def test_emoji_table_is_the_matrix_table() -> None:
    assert len(EMOJI_TABLE) == 64
    assert len({name for _, name in EMOJI_TABLE}) == 64
    assert EMOJI_TABLE[0] == ("🐶", "Dog") and EMOJI_TABLE[35][1] == "Santa"
    assert EMOJI_TABLE[53] == ("\u2708\ufe0f", "Aeroplane") and EMOJI_TABLE[63] == ("📌", "Pin")


def test_both_sides_see_the_same_seven_emoji() -> None:
    alice, _bob, ea, eb = _pair()
    assert ea == eb and len(ea) == 7
    assert all(e in EMOJI_TABLE for e in ea)
    assert alice.state is SasState.KEYS_EXCHANGED and alice.emoji == ea


def test_a_man_in_the_middle_shows_different_emoji() -> None:
    alice, bob, mallory_a, mallory_b = (SasVerification() for _ in range(4))
    # Mallory talks to Alice with one key and to Bob with another.
    ea = alice.receive_key(mallory_a.public_key, we_started=True, info=INFO)
    eb = bob.receive_key(mallory_b.public_key, we_started=False, info=INFO)
    assert ea != eb  # 42 bits: a collision here would be a 1 in 4 trillion event


def test_different_info_or_swapped_roles_differ() -> None:
    a1, b1 = SasVerification(), SasVerification()
    e1 = a1.receive_key(b1.public_key, we_started=True, info=INFO)
    e2 = b1.receive_key(a1.public_key, we_started=True, info=INFO)  # both think they started
    assert e1 != e2


def _confirmed_pair() -> tuple[SasVerification, SasVerification]:
    alice, bob, _, _ = _pair()
    alice.confirm()
    bob.confirm()
    return alice, bob


def test_mac_of_identity_key_verifies() -> None:
    alice, bob = _confirmed_pair()
    identity = IdentityKeyPair.generate().public_b64
    mac = alice.mac("ed25519:alice", identity, MAC_INFO_ALICE)
    bob.verify_mac("ed25519:alice", identity, MAC_INFO_ALICE, mac)
    assert bob.state is SasState.CONFIRMED


@pytest.mark.parametrize("tamper", ["other key", "other key id", "other info", "flipped mac"])
def test_tampered_mac_fails_and_cancels(tamper: str) -> None:
    alice, bob = _confirmed_pair()
    identity = IdentityKeyPair.generate().public_b64
    mac = alice.mac("ed25519:alice", identity, MAC_INFO_ALICE)
    key_id, key, info = "ed25519:alice", identity, MAC_INFO_ALICE
    if tamper == "other key":
        key = IdentityKeyPair.generate().public_b64
    elif tamper == "other key id":
        key_id = "ed25519:mallory"
    elif tamper == "other info":
        info = "VEIL_MAC_V1|txn-2|alice|D1|bob|D7|"
    else:
        mac = ("B" if mac[0] == "A" else "A") + mac[1:]
    with pytest.raises(Mismatch):
        bob.verify_mac(key_id, key, info, mac)
    assert bob.state is SasState.CANCELLED
    with pytest.raises(IllegalState):  # a failed verification refuses further use, even a good MAC
        bob.verify_mac("ed25519:alice", identity, MAC_INFO_ALICE,
                       alice.mac("ed25519:alice", identity, MAC_INFO_ALICE))


def test_mac_from_another_session_fails() -> None:
    alice, bob, _, _ = _pair()
    other_alice, _, _, _ = _pair()
    for s in (alice, bob, other_alice):
        s.confirm()
    identity = IdentityKeyPair.generate().public_b64
    with pytest.raises(Mismatch):
        bob.verify_mac("ed25519:alice", identity, MAC_INFO_ALICE,
                       other_alice.mac("ed25519:alice", identity, MAC_INFO_ALICE))


def test_illegal_steps() -> None:
    s = SasVerification()
    with pytest.raises(IllegalState):
        s.confirm()
    with pytest.raises(IllegalState):
        s.mac("k", "v", "i")
    with pytest.raises(IllegalState):
        _ = s.emoji
    alice, bob, _, _ = _pair()
    with pytest.raises(IllegalState):  # MACs only after the user compared the emoji
        alice.mac("k", "v", "i")
    with pytest.raises(IllegalState):
        alice.receive_key(bob.public_key, we_started=True, info=INFO)
    alice.cancel()
    assert alice.state is SasState.CANCELLED
    for step in (alice.confirm, lambda: alice.mac("k", "v", "i")):
        with pytest.raises(IllegalState):
            step()


def test_bad_keys_cancel() -> None:
    for bad in ("not base64!", "AAAA", None):
        s = SasVerification()
        with pytest.raises(MalformedData):
            s.receive_key(s.public_key if bad is None else bad, we_started=True, info=INFO)
        assert s.state is SasState.CANCELLED
        with pytest.raises(IllegalState):
            s.receive_key(SasVerification().public_key, we_started=True, info=INFO)
