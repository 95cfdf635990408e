"""Safe recipes over `cryptography.hazmat`: the only module here that touches it.

Identity keys (Ed25519), signature checks for device keys made by vodozemac, AEAD sealing,
HKDF, HMAC, X25519 agreement for linking, and the passphrase KDF for stores at rest.
"""

from __future__ import annotations

import hmac as _hmac
import os

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _chmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from veil.protocol.encoding import b64decode, b64encode
from veil.protocol.errors import DecryptionFailed, MalformedData, SignatureInvalid

__all__ = [
    "IdentityKeyPair",
    "X25519KeyPair",
    "aesgcm_decrypt",
    "aesgcm_encrypt",
    "derive_passphrase_key",
    "hkdf",
    "hmac_sha256",
    "hmac_verify",
    "open_sealed",
    "random_bytes",
    "seal",
    "verify_ed25519",
    "x25519_shared",
]

_NONCE = 12


def random_bytes(n: int) -> bytes:
    """Cryptographically secure random bytes."""
    return os.urandom(n)


class IdentityKeyPair:
    """An account identity key (Ed25519): signs the account's device lists."""

    __slots__ = ("_private",)

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> IdentityKeyPair:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> IdentityKeyPair:
        if len(raw) != 32:
            raise MalformedData("identity private key must be 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public_bytes(self) -> bytes:
        return self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_b64(self) -> str:
        return b64encode(self.public_bytes)

    def sign(self, message: bytes) -> str:
        """Sign and return the signature as unpadded base64."""
        return b64encode(self._private.sign(message))


def verify_ed25519(public_key_b64: str, message: bytes, signature_b64: str) -> None:
    """Verify an Ed25519 signature (vodozemac or identity key); raise SignatureInvalid."""
    key = b64decode(public_key_b64, what="Ed25519 key", length=32)
    sig = b64decode(signature_b64, what="signature", length=64)
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(sig, message)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureInvalid("signature does not verify") from exc


def hkdf(secret: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    h = _chmac.HMAC(key, hashes.SHA256())
    h.update(message)
    return h.finalize()


def hmac_verify(key: bytes, message: bytes, tag: bytes) -> bool:
    """Constant-time HMAC-SHA256 check."""
    return _hmac.compare_digest(hmac_sha256(key, message), tag)


def seal(key: bytes, plaintext: bytes, *, aad: bytes = b"") -> bytes:
    """AES-256-GCM with a random nonce: nonce ‖ ciphertext ‖ tag."""
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, *, aad: bytes = b"") -> bytes:
    """Open what `seal` made; any failure is DecryptionFailed."""
    if len(sealed) < _NONCE + 16:
        raise DecryptionFailed("ciphertext too short")
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed("could not decrypt") from exc


def aesgcm_encrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    """AES-256-GCM with a caller-chosen 12-byte nonce: ciphertext ‖ 16-byte tag.

    For constructions that derive nonces themselves (attachment STREAM chunks); the caller must
    never reuse a (key, nonce) pair. Anything else should use `seal`.
    """
    if len(key) != 32 or len(nonce) != _NONCE:
        raise ValueError("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    return AESGCM(key).encrypt(nonce, data, aad)


def aesgcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    """Open what `aesgcm_encrypt` made; any failure is DecryptionFailed."""
    if len(key) != 32 or len(nonce) != _NONCE or len(data) < 16:
        raise DecryptionFailed("could not decrypt")
    try:
        return AESGCM(key).decrypt(nonce, data, aad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed("could not decrypt") from exc


class X25519KeyPair:
    """An ephemeral X25519 key pair (device linking)."""

    __slots__ = ("_private",)

    def __init__(self) -> None:
        self._private = X25519PrivateKey.generate()

    @property
    def public_b64(self) -> str:
        return b64encode(self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def agree(self, their_public_b64: str) -> bytes:
        return x25519_shared(self._private, their_public_b64)


def x25519_shared(private: X25519PrivateKey, their_public_b64: str) -> bytes:
    raw = b64decode(their_public_b64, what="X25519 key", length=32)
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError as exc:
        raise MalformedData("X25519 key is not usable") from exc


def derive_passphrase_key(passphrase: str, salt: bytes, *, time_cost: int = 3,
                          memory_cost_kib: int = 65536) -> bytes:
    """Argon2id: a 32-byte key from a passphrase and a 16-byte salt."""
    return hash_secret_raw(
        passphrase.encode("utf-8"),
        salt,
        time_cost=time_cost,
        memory_cost=memory_cost_kib,
        parallelism=2,
        hash_len=32,
        type=Type.ID,
    )
