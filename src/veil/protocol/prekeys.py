"""What a device signs for each one-time key and fallback key it publishes.

Olm has no signed pre-key, so every published Curve25519 key is signed by the device's
Ed25519 key over this exact message, and checked by the server and by claimers.
"""

from veil.protocol.keys import verify_ed25519

__all__ = ["prekey_message", "verify_prekey"]


def prekey_message(handle: str, device_id: str, key_id: str, key: str, *, fallback: bool) -> bytes:
    kind = "fallback" if fallback else "otk"
    return f"veil-prekey-v1\n{kind}\n{handle}\n{device_id}\n{key_id}\n{key}".encode()


def verify_prekey(device_ed25519: str, handle: str, device_id: str, key_id: str, key: str,
                  signature: str, *, fallback: bool) -> None:
    """Raise SignatureInvalid unless the device signed this key."""
    msg = prekey_message(handle, device_id, key_id, key, fallback=fallback)
    verify_ed25519(device_ed25519, msg, signature)
