"""Safety numbers: Signal's displayable fingerprint (version 1) and a QR payload to scan it.

Two people compare 60 digits (or one scans the other's QR code) to rule out a man in the
middle between their accounts' identity keys. Veil passes the raw 32-byte Ed25519 identity
public keys and the UTF-8 handles.

The digits follow libsignal (`rust/protocol/src/fingerprint.rs`, libsignal-protocol-c
`fingerprint.c`) exactly, so the published test vector holds:

    data = 0x0000 (fingerprint version, 2 bytes BE) ‖ public_key ‖ stable_identifier
    repeat `iterations` (5200) times:  data = SHA-512(data ‖ public_key)
    side = the first 30 bytes as six 5-byte big-endian integers, each % 100000, 5 digits each

Note the first hash already covers `public_key` twice (once inside `data`, once appended):
the input is *not* hashed once before the loop. The displayable number is the two 30-digit
sides in sorted string order, so both people see the same 60 digits.

QR payload (Veil's own design; Signal's is protobuf): ``b"VSN" ‖ version (1 byte) ‖
fp(sender) (32 bytes) ‖ fp(scanner) (32 bytes)`` where fp is the first 32 bytes of the same
iterated hash. The scanner checks both halves, so one scan verifies both directions; a
different key on either side raises `Mismatch`. The payload carries only hashes: no handle
or key leaks to a camera pointed at the screen beyond what the digits already show.
"""

from __future__ import annotations

import hashlib
import hmac

from veil.protocol.errors import MalformedData, Mismatch

__all__ = [
    "DEFAULT_ITERATIONS",
    "QR_VERSION",
    "format_groups",
    "qr_payload",
    "safety_number",
    "verify_qr_payload",
]

DEFAULT_ITERATIONS = 5200
QR_VERSION = 1

_FINGERPRINT_VERSION = b"\x00\x00"  # libsignal hashes version 0 here for every scannable version
_QR_MAGIC = b"VSN"
_QR_FP_LEN = 32
_QR_LEN = len(_QR_MAGIC) + 1 + 2 * _QR_FP_LEN


def _iterated_hash(public_key: bytes, stable_id: bytes, iterations: int) -> bytes:
    """The 64-byte iterated SHA-512 of one side (what both digits and QR are cut from)."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    data = _FINGERPRINT_VERSION + public_key + stable_id
    for _ in range(iterations):
        data = hashlib.sha512(data + public_key).digest()
    return data


def _display_half(digest: bytes) -> str:
    return "".join(f"{int.from_bytes(digest[i:i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


def safety_number(local_key: bytes, local_id: bytes, remote_key: bytes, remote_id: bytes, *,
                  iterations: int = DEFAULT_ITERATIONS) -> str:
    """The 60-digit safety number of two identities; the same whichever side computes it."""
    local = _display_half(_iterated_hash(local_key, local_id, iterations))
    remote = _display_half(_iterated_hash(remote_key, remote_id, iterations))
    return local + remote if local <= remote else remote + local


def format_groups(number: str, *, per_line: int = 4) -> str:
    """Lay 60 digits out as 12 groups of 5, `per_line` groups a line (3 lines of 4 by default)."""
    if len(number) != 60 or not number.isascii() or not number.isdigit():
        raise MalformedData("a safety number has exactly 60 digits")
    if per_line < 1:
        raise ValueError("per_line must be at least 1")
    groups = [number[i:i + 5] for i in range(0, 60, 5)]
    return "\n".join(" ".join(groups[i:i + per_line]) for i in range(0, 12, per_line))


def qr_payload(version: int, local_key: bytes, local_id: bytes, remote_key: bytes, remote_id: bytes, *,
               iterations: int = DEFAULT_ITERATIONS) -> bytes:
    """What this device shows as a QR code for the other person to scan."""
    if version != QR_VERSION:
        raise MalformedData(f"unsupported safety QR version {version}")
    local = _iterated_hash(local_key, local_id, iterations)[:_QR_FP_LEN]
    remote = _iterated_hash(remote_key, remote_id, iterations)[:_QR_FP_LEN]
    return _QR_MAGIC + bytes([version]) + local + remote


def verify_qr_payload(payload: bytes, local_key: bytes, local_id: bytes, remote_key: bytes,
                      remote_id: bytes, *, iterations: int = DEFAULT_ITERATIONS) -> None:
    """Check a QR payload scanned from the other person's screen.

    `local_*` is the scanning device's own identity, `remote_*` the identity it believes the
    other person has. Raises MalformedData if this is not a Veil safety QR (or an unknown
    version) and Mismatch if either fingerprint differs: then keys are not what each side thinks.
    """
    if len(payload) != _QR_LEN or payload[:len(_QR_MAGIC)] != _QR_MAGIC:
        raise MalformedData("not a Veil safety-number QR code")
    version = payload[len(_QR_MAGIC)]
    if version != QR_VERSION:
        raise MalformedData(f"unsupported safety QR version {version}")
    body = payload[len(_QR_MAGIC) + 1:]
    theirs_of_them, theirs_of_us = body[:_QR_FP_LEN], body[_QR_FP_LEN:]
    ours_of_them = _iterated_hash(remote_key, remote_id, iterations)[:_QR_FP_LEN]
    ours_of_us = _iterated_hash(local_key, local_id, iterations)[:_QR_FP_LEN]
    # Compare both halves before deciding, so timing does not say which side differed.
    same_them = hmac.compare_digest(theirs_of_them, ours_of_them)
    same_us = hmac.compare_digest(theirs_of_us, ours_of_us)
    if not (same_them and same_us):
        raise Mismatch("the scanned safety number does not match")
