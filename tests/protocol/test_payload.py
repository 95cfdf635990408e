from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.protocol.errors import MalformedData
from veil.protocol.payload import (
    RegularMessage,
    SecretPayload,
    decode_payload,
    decode_regular,
    encode_payload,
    encode_regular,
)


@given(st.text(min_size=1, max_size=500), st.integers(0, 2**53), st.binary(max_size=32))
def test_payload_round_trips(body: str, ts: int, fk: bytes) -> None:
    p = SecretPayload(message_id="m1", sender="alice", sender_device="D1", to="bob", sent_at=ts, body=body,
                      franking_key=fk)
    assert decode_payload(encode_payload(p)) == p


@given(st.binary(max_size=300))
def test_random_bytes_are_malformed_not_a_crash(data: bytes) -> None:
    for decode in (decode_payload, decode_regular):
        try:
            decode(data)
        except MalformedData:
            pass


def test_unknown_kind_is_rejected() -> None:
    import msgspec

    raw = msgspec.msgpack.encode({"message_id": "m", "sender": "a", "sender_device": "d", "to": "b",
                                  "sent_at": 1, "kind": "bogus"})
    with pytest.raises(MalformedData):
        decode_payload(raw)


def test_regular_round_trips() -> None:
    m = RegularMessage(message_id="x", sender="a", sender_device="d", to="b", text="hi", ts=5)
    assert decode_regular(encode_regular(m)) == m
