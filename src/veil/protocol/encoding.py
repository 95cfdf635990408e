"""Unpadded standard base64, the text form of every key and signature on the wire."""

import base64
import binascii

from veil.protocol.errors import MalformedData

__all__ = ["b64decode", "b64encode"]


def b64encode(data: bytes) -> str:
    """Encode bytes as unpadded standard base64 (vodozemac's key format)."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str, *, what: str = "value", length: int | None = None) -> bytes:
    """Decode unpadded or padded standard base64; raise MalformedData naming `what`."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedData(f"{what} is not valid base64") from exc
    if length is not None and len(raw) != length:
        raise MalformedData(f"{what} must be {length} bytes, got {len(raw)}")
    return raw
