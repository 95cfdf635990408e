"""Binary frames on the delivery stream (WebSocket), encoded with msgpack.

Server → device: Deliver (a batch of envelopes), QueueEmpty (the stored backlog has been
sent), KeysLow (publish more one-time keys), StreamError.
Device → server: Ack (delete these envelopes), Ping.
Frames are tagged msgspec structs, so decoding is one call with no per-field Python work.
"""

from __future__ import annotations

from typing import Union, cast

import msgspec

from veil.protocol.errors import MalformedData

__all__ = [
    "KIND_REGULAR",
    "KIND_SECRET",
    "Ack",
    "ClientFrame",
    "Deliver",
    "Envelope",
    "KeysLow",
    "Ping",
    "QueueEmpty",
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


ServerFrame = Union[Deliver, QueueEmpty, KeysLow, StreamError]
ClientFrame = Union[Ack, Ping]

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
