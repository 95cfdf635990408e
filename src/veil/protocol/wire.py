"""Binary frames on the delivery stream (WebSocket), encoded with msgpack.

Server → device: Deliver (a batch of envelopes), QueueEmpty (the stored backlog has been
sent), KeysLow (publish more one-time keys), StreamError.
Device → server: Ack (delete these envelopes), Ping, Send (a batch of envelopes, answered by
SendResult after the commit), Sends (several Send frames in one). The server answers Send frames
whose results are ready together with one Results frame.
Frames are tagged msgspec structs, so decoding is one call with no per-field Python work.
"""

from __future__ import annotations

from typing import Annotated, Union, cast

import msgspec

from veil.protocol.errors import MalformedData

__all__ = [
    "KIND_REGULAR",
    "KIND_SECRET",
    "MAX_SENDS_PER_FRAME",
    "Ack",
    "ClientFrame",
    "Deliver",
    "DeviceRef",
    "Envelope",
    "KeysLow",
    "Ping",
    "QueueEmpty",
    "Results",
    "Send",
    "SendEnvelope",
    "SendResult",
    "Sends",
    "ServerFrame",
    "StreamError",
    "decode_client_frame",
    "decode_server_frame",
    "encode_frame",
]

KIND_SECRET = 0  # body is an Olm message the server cannot read
KIND_REGULAR = 1  # body is a RegularMessage (readable; regular threads)


class Envelope(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    id: int
    kind: int
    sender: str
    sender_device: str
    server_ts: int  # milliseconds since the epoch
    olm_type: int
    body: bytes
    client_message_id: str = ""
    commitment: bytes = b""  # franking commitment from the sender (secret envelopes)
    franking_tag: bytes = b""  # the server's tag over commitment, sender, recipient, time


class Deliver(msgspec.Struct, frozen=True, tag="deliver", array_like=True):
    envelopes: list[Envelope]


class QueueEmpty(msgspec.Struct, frozen=True, tag="empty", array_like=True):
    pass


class KeysLow(msgspec.Struct, frozen=True, tag="keys_low", array_like=True):
    one_time_keys: int


class StreamError(msgspec.Struct, frozen=True, tag="error", array_like=True):
    code: str
    message: str


class Ack(msgspec.Struct, frozen=True, tag="ack", array_like=True):
    ids: list[int]


class Ping(msgspec.Struct, frozen=True, tag="ping", array_like=True):
    pass


# -- sending on the stream (appended; the frames above are unchanged) ---------------------------
# The same limits as POST /v1/messages, checked while decoding: a frame outside them is
# malformed (StreamError), exactly as the REST path answers 422.
_Handle = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{3,32}$")]
_DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


class SendEnvelope(msgspec.Struct, frozen=True, array_like=True):
    """One recipient device's ciphertext in a Send frame."""

    handle: _Handle
    device_id: _DeviceId
    olm_type: Annotated[int, msgspec.Meta(ge=0, le=255)]
    body: Annotated[bytes, msgspec.Meta(min_length=1, max_length=64 * 1024)]


class DeviceRef(msgspec.Struct, frozen=True, array_like=True):
    handle: _Handle
    device_id: _DeviceId


class Send(msgspec.Struct, frozen=True, tag="send", array_like=True):
    """Device → server: the stream form of POST /v1/messages (same checks, same idempotency key
    (sender device, client_message_id)); answered by one SendResult after the commit."""

    client_message_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    recipient: _Handle
    envelopes: Annotated[list[SendEnvelope], msgspec.Meta(max_length=64)]
    skipped: Annotated[list[DeviceRef], msgspec.Meta(max_length=256)] = []
    commitment: Annotated[bytes, msgspec.Meta(max_length=64)] = b""  # 32 bytes, or empty: none


class SendResult(msgspec.Struct, frozen=True, tag="sent", array_like=True):
    """Server → device: `ok` only once the batch is committed. Otherwise `error` is the code the
    REST path would give (device_mismatch with `missing`/`stale`, unknown_user, ...)."""

    client_message_id: str
    ok: bool
    server_ts: int = 0
    count: int = 0
    error: str = ""
    message: str = ""
    missing: list[DeviceRef] = []
    stale: list[DeviceRef] = []


# -- several sends per frame (appended): the per-frame cost (WebSocket framing, one event-loop
# wake-up, one decode) is then paid once per group rather than once per message.
MAX_SENDS_PER_FRAME = 256


class Sends(msgspec.Struct, frozen=True, tag="sends", array_like=True):
    """Device → server: several Send frames in one; each is answered as if sent alone."""

    sends: Annotated[list[Send], msgspec.Meta(min_length=1, max_length=MAX_SENDS_PER_FRAME)]


class Results(msgspec.Struct, frozen=True, tag="results", array_like=True):
    """Server → device: the SendResults that were ready together, in the order they were ready."""

    results: list[SendResult]


ServerFrame = Union[Deliver, QueueEmpty, KeysLow, StreamError, SendResult, Results]
ClientFrame = Union[Ack, Ping, Send, Sends]

_encoder = msgspec.msgpack.Encoder()
_server_decoder = msgspec.msgpack.Decoder(ServerFrame)
_client_decoder = msgspec.msgpack.Decoder(ClientFrame)


def encode_frame(frame: ServerFrame | ClientFrame) -> bytes:
    return _encoder.encode(frame)


def decode_server_frame(data: bytes) -> ServerFrame:
    try:
        return cast(ServerFrame, _server_decoder.decode(data))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedData(f"bad server frame: {exc}") from exc


def decode_client_frame(data: bytes) -> ClientFrame:
    try:
        return cast(ClientFrame, _client_decoder.decode(data))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedData(f"bad client frame: {exc}") from exc
