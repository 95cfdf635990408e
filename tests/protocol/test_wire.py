from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.protocol.errors import MalformedData
from veil.protocol.wire import (
    MAX_SENDS_PER_FRAME,
    Ack,
    Deliver,
    Envelope,
    KeysLow,
    QueueEmpty,
    Results,
    Send,
    SendEnvelope,
    SendResult,
    Sends,
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


_handles = st.from_regex(r"[a-z0-9_]{3,32}", fullmatch=True)
_sends = st.builds(
    Send, client_message_id=st.text(min_size=1, max_size=40), recipient=_handles,
    envelopes=st.lists(st.builds(SendEnvelope, handle=_handles, device_id=st.text(min_size=1, max_size=16),
                                 olm_type=st.integers(0, 1), body=st.binary(min_size=1, max_size=300)),
                       max_size=3),
    commitment=st.binary(max_size=32))


@given(st.lists(_sends, min_size=1, max_size=4))
def test_sends_round_trip(sends: list[Send]) -> None:
    assert decode_client_frame(encode_frame(Sends(sends))) == Sends(sends)


@given(st.lists(st.builds(SendResult, client_message_id=st.text(max_size=40), ok=st.booleans(),
                          server_ts=st.integers(0, 2**53), count=st.integers(0, 64)), max_size=5))
def test_results_round_trip(results: list[SendResult]) -> None:
    assert decode_server_frame(encode_frame(Results(results))) == Results(results)


def test_sends_is_bounded() -> None:
    one = Send(client_message_id="m", recipient="bob", envelopes=[])
    with pytest.raises(MalformedData):
        decode_client_frame(encode_frame(Sends([])))
    with pytest.raises(MalformedData):
        decode_client_frame(encode_frame(Sends([one] * (MAX_SENDS_PER_FRAME + 1))))
    assert decode_client_frame(encode_frame(Sends([one] * MAX_SENDS_PER_FRAME))) == Sends([one] * MAX_SENDS_PER_FRAME)
