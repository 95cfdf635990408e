from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.protocol.errors import FrankingInvalid, ProtocolError
from veil.protocol.franking import check_commitment, commit, new_franking_key, server_tag, verify_tag
from veil.protocol.keys import hmac_sha256

SERVER_KEY = bytes(range(32))
FIELDS = ("alice", "D1", "bob", "D7", 1_700_000_000_000)


def test_round_trip() -> None:
    n = new_franking_key()
    payload = b'{"body": "you will regret this"}'
    c = commit(n, payload)
    check_commitment(n, payload, c)
    tag = server_tag(SERVER_KEY, c, *FIELDS)
    verify_tag(SERVER_KEY, tag, c, *FIELDS)


def test_commitment_is_hmac_sha256() -> None:
    n = new_franking_key()
    assert len(n) == 32 and n != new_franking_key()
    assert commit(n, b"x") == hmac_sha256(n, b"x")


def test_altered_payload_or_wrong_key_fails() -> None:
    n = new_franking_key()
    c = commit(n, b"what was sent")
    for key, payload, com in [(n, b"what was shown", c), (new_franking_key(), b"what was sent", c),
                              (n[:16], b"what was sent", c), (n, b"what was sent", c[:-1])]:
        with pytest.raises(FrankingInvalid):
            check_commitment(key, payload, com)
    assert issubclass(FrankingInvalid, ProtocolError)


@pytest.mark.parametrize("index, value", [(0, "mallory"), (1, "D2"), (2, "carol"), (3, "D8"),
                                          (4, 1_700_000_000_001)])
def test_tag_cannot_be_moved(index: int, value: str | int) -> None:
    c = commit(new_franking_key(), b"m")
    tag = server_tag(SERVER_KEY, c, *FIELDS)
    moved = list(FIELDS)
    moved[index] = value
    with pytest.raises(FrankingInvalid):
        verify_tag(SERVER_KEY, tag, c, *moved)  # type: ignore[arg-type]


def test_tag_fails_for_another_commitment_or_server_key() -> None:
    c = commit(new_franking_key(), b"m")
    tag = server_tag(SERVER_KEY, c, *FIELDS)
    with pytest.raises(FrankingInvalid):
        verify_tag(SERVER_KEY, tag, commit(new_franking_key(), b"m"), *FIELDS)
    with pytest.raises(FrankingInvalid):
        verify_tag(bytes(32), tag, c, *FIELDS)
    with pytest.raises(FrankingInvalid):
        verify_tag(SERVER_KEY, tag, c, "alice", "D1", "bob", "D7", -1)


def test_field_boundaries_are_unambiguous() -> None:
    c = commit(new_franking_key(), b"m")
    tag = server_tag(SERVER_KEY, c, "ab", "c", "bob", "D7", 1)
    with pytest.raises(FrankingInvalid):
        verify_tag(SERVER_KEY, tag, c, "a", "bc", "bob", "D7", 1)


_FOUR = st.tuples(st.text(max_size=8), st.text(max_size=8), st.text(max_size=8), st.text(max_size=8))
Four = tuple[str, str, str, str]


@given(_FOUR, _FOUR)
def test_distinct_fields_give_distinct_tags(a: Four, b: Four) -> None:
    c = bytes(32)
    same = server_tag(SERVER_KEY, c, *a, 5) == server_tag(SERVER_KEY, c, *b, 5)
    assert same == (a == b)
