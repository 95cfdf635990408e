"""What travels inside an encrypted channel, and the readable regular-thread event.

Everything that changes a secret thread (text, timer, unsend, read, ...) is a SecretPayload
inside the Olm ciphertext, so the server can neither read nor forge it.
"""

from __future__ import annotations

import msgspec

from veil.protocol.errors import MalformedData

__all__ = [
    "KINDS",
    "REGULAR_KINDS",
    "Attachment",
    "RegularMessage",
    "SecretPayload",
    "decode_payload",
    "decode_regular",
    "encode_payload",
    "encode_regular",
]

KINDS = frozenset({"text", "timer", "unsend", "read", "typing", "screenshot", "image", "video", "sticker",
                   "sas"})
REGULAR_KINDS = frozenset({"text", "image", "video", "sticker", "read", "typing", "unsend"})
MAX_BODY = 64 * 1024


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """A photo or video: where the blob is and, in secret threads, how to open and check it."""

    blob_id: str
    mime: str
    size: int  # plaintext bytes
    width: int = 0
    height: int = 0
    duration_ms: int = 0
    name: str = ""
    key: bytes = b""  # secret threads: the attachment key (32 bytes)
    digest: bytes = b""  # secret threads: SHA-256 of the ciphertext blob
    thumbnail: bytes = b""  # small JPEG (inside the encrypted payload in secret threads)


class SecretPayload(msgspec.Struct, frozen=True, kw_only=True):
    v: int = 1
    message_id: str
    sender: str  # handle
    sender_device: str
    to: str  # handle of the other participant, as the sender sees the thread
    sent_at: int  # ms since the epoch, the sender's clock
    kind: str = "text"
    body: str = ""
    timer: int = 0  # seconds; 0 = off
    ref: str = ""  # message id this refers to (unsend, read)
    franking_key: bytes = b""
    attachment: Attachment | None = None
    sticker: str = ""  # "pack/sticker_id"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown payload kind {self.kind!r}")
        if len(self.body) > MAX_BODY:
            raise ValueError("payload body too large")
        if not self.message_id:
            raise ValueError("payload has no message id")


class RegularMessage(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    sender: str
    sender_device: str
    to: str
    text: str
    ts: int
    client_message_id: str = ""
    kind: str = "text"
    attachment: Attachment | None = None
    sticker: str = ""
    ref: str = ""


_enc = msgspec.msgpack.Encoder()
_payload_dec = msgspec.msgpack.Decoder(SecretPayload)
_regular_dec = msgspec.msgpack.Decoder(RegularMessage)


def encode_payload(p: SecretPayload) -> bytes:
    return _enc.encode(p)


def decode_payload(data: bytes) -> SecretPayload:
    try:
        return _payload_dec.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise MalformedData(f"bad payload: {exc}") from exc


def encode_regular(m: RegularMessage) -> bytes:
    return _enc.encode(m)


def decode_regular(data: bytes) -> RegularMessage:
    try:
        return _regular_dec.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise MalformedData(f"bad regular message: {exc}") from exc
