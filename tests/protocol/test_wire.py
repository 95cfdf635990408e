from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.protocol.errors import MalformedData
from veil.protocol.wire import (
    Ack,
    Deliver,
    Envelope,
    KeysLow,
    QueueEmpty,
    decode_client_frame,
    decode_server_frame,
    encode_frame,
)

envelopes = st.builds(Envelope, id=st.integers(0, 2**62), kind=st.integers(0, 1), sender=st.text(max_size=32),
                      sender_device=st.text(max_size=10), server_ts=st.integers(0, 2**53),
                      olm_type=st.integers(0, 1), body=st.binary(max_size=300),
                      client_message_id=st.text(max_size=40))


@given(st.lists(envelopes, max_size=5))
def test_deliver_round_trips(envs: list[Envelope]) -> None:
    frame = Deliver(envelopes=envs)
    assert decode_server_frame(encode_frame(frame)) == frame


@given(st.lists(st.integers(0, 2**62), max_size=50))
def test_ack_round_trips(ids: list[int]) -> None:
    assert decode_client_frame(encode_frame(Ack(ids=ids))) == Ack(ids=ids)


def test_small_frames_round_trip() -> None:
    for f in (QueueEmpty(), KeysLow(one_time_keys=3)):
        assert decode_server_frame(encode_frame(f)) == f


@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoders(data: bytes) -> None:
    for decode in (decode_server_frame, decode_client_frame):
        try:
            decode(data)
        except MalformedData:
            pass


def test_client_frame_is_not_a_server_frame() -> None:
    with pytest.raises(MalformedData):
        decode_server_frame(encode_frame(Ack(ids=[1])))
