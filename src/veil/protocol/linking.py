"""Linking a new device to an account, sans-I/O.

The existing device shows a code: the server's link id plus a secret the server never sees.
Both devices agree an X25519 key through the server and mix the secret in with HKDF, so a
server that swaps keys still cannot read or forge the request or the response:

    existing (A)                     server                      new (B)
    eph_a  ─────────── POST link ──▶ link_id
    shows code = link_id ‖ secret                ◀── GET link ── (user typed code)
                                                 ◀── PUT request: eph_b, seal(k, LinkRequest)
    GET ──▶ open(k, LinkRequest), sign new device list
    PUT response: seal(k, LinkResponse{identity key, device list}) ──▶ GET ──▶ open
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from veil.protocol.devicelist import DeviceList
from veil.protocol.errors import DecryptionFailed, MalformedData
from veil.protocol.keys import hkdf, open_sealed, random_bytes, seal

__all__ = [
    "LINK_ID_LEN",
    "LinkCode",
    "LinkRequest",
    "LinkResponse",
    "link_key",
    "open_request",
    "open_response",
    "seal_request",
    "seal_response",
]

LINK_ID_LEN = 8
_SECRET_LEN = 10  # 80 bits: 16 base32 characters


class LinkRequest(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str
    curve25519: str
    ed25519: str


class LinkResponse(msgspec.Struct, frozen=True, kw_only=True):
    handle: str
    identity_private: bytes
    device_list: DeviceList


class LinkCode(msgspec.Struct, frozen=True, kw_only=True):
    link_id: str
    secret: bytes

    @classmethod
    def new(cls, link_id: str) -> LinkCode:
        return cls(link_id=link_id, secret=random_bytes(_SECRET_LEN))

    def __str__(self) -> str:
        s = base64.b32encode(self.secret).decode("ascii")
        return f"{self.link_id}-{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}"

    @classmethod
    def parse(cls, text: str) -> LinkCode:
        """Parse a code as typed: spaces, dashes and case do not matter."""
        flat = "".join(ch for ch in text.upper() if ch.isalnum())
        if len(flat) != LINK_ID_LEN + 16:
            raise MalformedData("a link code has 24 letters and digits; check what you typed")
        try:
            secret = base64.b32decode(flat[LINK_ID_LEN:])
        except (binascii.Error, ValueError) as exc:
            raise MalformedData("the link code is not valid; check what you typed") from exc
        return cls(link_id=flat[:LINK_ID_LEN], secret=secret)


def link_key(shared: bytes, code: LinkCode, eph_existing: str, eph_new: str) -> bytes:
    info = f"veil-link-v1\n{code.link_id}\n{eph_existing}\n{eph_new}".encode()
    return hkdf(shared, salt=code.secret, info=info)


_enc = msgspec.msgpack.Encoder()


def seal_request(key: bytes, req: LinkRequest) -> bytes:
    return seal(key, _enc.encode(req), aad=b"link-request")


def open_request(key: bytes, data: bytes) -> LinkRequest:
    try:
        return msgspec.msgpack.decode(open_sealed(key, data, aad=b"link-request"), type=LinkRequest)
    except DecryptionFailed as exc:
        raise DecryptionFailed("the link request does not match this code") from exc
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedData("the link request is malformed") from exc


def seal_response(key: bytes, resp: LinkResponse) -> bytes:
    return seal(key, _enc.encode(resp), aad=b"link-response")


def open_response(key: bytes, data: bytes) -> LinkResponse:
    try:
        return msgspec.msgpack.decode(open_sealed(key, data, aad=b"link-response"), type=LinkResponse)
    except DecryptionFailed as exc:
        raise DecryptionFailed("the link code is wrong") from exc
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedData("the link response is malformed") from exc
