"""Message franking: let a recipient report an end-to-end encrypted message verifiably.

After Facebook's "Messenger Secret Conversations" whitepaper and Grubbs–Lu–Ristenpart,
"Message Franking via Committing Authenticated Encryption" (CRYPTO 2017):

1. The sender picks a fresh franking key N per message, puts N inside the encrypted payload,
   and sends `commit(N, payload)` = HMAC-SHA256(N, payload) *outside* it, next to the ciphertext.
2. The server cannot read the payload but binds the commitment to who sent it, to whom, and
   when: `server_tag` = HMAC-SHA256(server key, commitment ‖ sender ‖ device ‖ recipient ‖
   device ‖ time), delivered with the message.
3. The recipient, on decrypting, checks `check_commitment` (so a sender cannot frank one text
   and show another) and keeps N, the payload, the commitment and the tag.
4. To report, the recipient reveals them; the server checks `verify_tag` (it really relayed that
   commitment from that sender at that time) and `check_commitment` (the payload is what was
   committed). Nobody else learns anything from the commitment: N is random per message.

The tag's fields are length-prefixed behind a domain label, so no two different field lists
encode to the same bytes ("ab"+"c" vs "a"+"bc"), and a tag cannot be moved to another
sender, device, recipient or time. Every check runs in constant time and fails with
`FrankingInvalid`, saying nothing about which part was wrong.
"""

from __future__ import annotations

import struct

from veil.protocol.errors import FrankingInvalid
from veil.protocol.keys import hmac_sha256, hmac_verify, random_bytes

__all__ = [
    "FRANKING_KEY_SIZE",
    "check_commitment",
    "commit",
    "new_franking_key",
    "server_tag",
    "verify_tag",
]

FRANKING_KEY_SIZE = 32
_TAG_LABEL = b"veil franking server tag v1"


def new_franking_key() -> bytes:
    """A fresh random franking key N: one per message, never reused."""
    return random_bytes(FRANKING_KEY_SIZE)


def commit(franking_key: bytes, payload: bytes) -> bytes:
    """The sender's commitment to the exact payload bytes inside the encryption."""
    if len(franking_key) != FRANKING_KEY_SIZE:
        raise ValueError("franking keys are 32 bytes")
    return hmac_sha256(franking_key, payload)


def check_commitment(franking_key: bytes, payload: bytes, commitment: bytes) -> None:
    """Raise FrankingInvalid unless `commitment` commits to `payload` under `franking_key`."""
    if len(franking_key) != FRANKING_KEY_SIZE or not hmac_verify(franking_key, payload, commitment):
        raise FrankingInvalid("the franking commitment does not match the message")


def _field(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _tag_input(commitment: bytes, sender_handle: str, sender_device: str, recipient_handle: str,
               recipient_device: str, server_ts: int) -> bytes:
    if not 0 <= server_ts < 2**63:
        raise ValueError("server_ts is milliseconds since the epoch")
    return b"".join([
        _field(_TAG_LABEL),
        _field(commitment),
        _field(sender_handle.encode("utf-8")),
        _field(sender_device.encode("utf-8")),
        _field(recipient_handle.encode("utf-8")),
        _field(recipient_device.encode("utf-8")),
        struct.pack(">Q", server_ts),
    ])


def server_tag(server_key: bytes, commitment: bytes, sender_handle: str, sender_device: str,
               recipient_handle: str, recipient_device: str, server_ts: int) -> bytes:
    """The server's tag binding a commitment to its sender, recipient and time (ms)."""
    if len(server_key) < 32:
        raise ValueError("the server franking key must be at least 32 bytes")
    return hmac_sha256(server_key, _tag_input(commitment, sender_handle, sender_device, recipient_handle,
                                              recipient_device, server_ts))


def verify_tag(server_key: bytes, tag: bytes, commitment: bytes, sender_handle: str, sender_device: str,
               recipient_handle: str, recipient_device: str, server_ts: int) -> None:
    """Raise FrankingInvalid unless this server made `tag` for exactly these fields."""
    try:
        message = _tag_input(commitment, sender_handle, sender_device, recipient_handle, recipient_device,
                             server_ts)
    except ValueError as exc:
        raise FrankingInvalid("the franking tag does not match") from exc
    if not hmac_verify(server_key, message, tag):
        raise FrankingInvalid("the franking tag does not match")
