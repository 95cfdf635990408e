"""The wrapper around vodozemac's Olm (sas.py wraps its SAS): binding types never leave these two.

Callers see base64 strings, bytes and two small classes. Every decryption or session
failure becomes DecryptionFailed.
"""

from __future__ import annotations

from dataclasses import dataclass

import vodozemac as _vz

from veil.protocol.errors import DecryptionFailed, MalformedData

__all__ = ["NORMAL", "PRE_KEY", "OlmAccount", "OlmSession", "OneTimeKey"]

PRE_KEY = 0
NORMAL = 1


@dataclass(frozen=True, slots=True)
class OneTimeKey:
    key_id: str
    key: str  # Curve25519, unpadded base64
    signature: str  # by the device's Ed25519 key over `prekey_message(...)`
    fallback: bool = False


def _curve(b64: str) -> _vz.Curve25519PublicKey:
    try:
        return _vz.Curve25519PublicKey.from_base64(b64)
    except Exception as exc:  # the binding raises several exception types
        raise MalformedData("Curve25519 key is not valid") from exc


class OlmAccount:
    """One device's long-term Olm keys."""

    __slots__ = ("_acc",)

    def __init__(self, acc: _vz.Account | None = None) -> None:
        self._acc = acc if acc is not None else _vz.Account()

    @property
    def curve25519(self) -> str:
        return str(self._acc.curve25519_key.to_base64())

    @property
    def ed25519(self) -> str:
        return str(self._acc.ed25519_key.to_base64())

    def sign(self, message: bytes) -> str:
        return str(self._acc.sign(message).to_base64())

    def generate_one_time_keys(self, count: int) -> dict[str, str]:
        """Make up to `count` new one-time keys; return every unpublished key by id."""
        self._acc.generate_one_time_keys(count)
        return {kid: k.to_base64() for kid, k in self._acc.one_time_keys.items()}

    def unpublished_one_time_keys(self) -> dict[str, str]:
        return {kid: k.to_base64() for kid, k in self._acc.one_time_keys.items()}

    def generate_fallback_key(self) -> tuple[str, str]:
        self._acc.generate_fallback_key()  # type: ignore[attr-defined]
        fb: dict[str, _vz.Curve25519PublicKey] = self._acc.fallback_key  # type: ignore[attr-defined]
        ((kid, key),) = fb.items()
        return kid, key.to_base64()

    def unpublished_fallback_key(self) -> tuple[str, str] | None:
        fb: dict[str, _vz.Curve25519PublicKey] = self._acc.fallback_key  # type: ignore[attr-defined]
        for kid, key in fb.items():
            return kid, key.to_base64()
        return None

    def mark_keys_as_published(self) -> None:
        self._acc.mark_keys_as_published()

    @property
    def max_one_time_keys(self) -> int:
        return int(self._acc.max_number_of_one_time_keys)

    def outbound_session(self, their_curve25519: str, their_one_time_key: str) -> OlmSession:
        try:
            s = self._acc.create_outbound_session(_curve(their_curve25519), _curve(their_one_time_key))
        except MalformedData:
            raise
        except Exception as exc:
            raise DecryptionFailed("could not start a session") from exc
        return OlmSession(s)

    def inbound_session(self, their_curve25519: str, body: bytes) -> tuple[OlmSession, bytes]:
        """Start a session from a pre-key message; return it and the first plaintext."""
        try:
            msg = _vz.AnyOlmMessage.from_parts(PRE_KEY, body).to_pre_key()
            if msg is None:
                raise DecryptionFailed("not a pre-key message")
            s, plaintext = self._acc.create_inbound_session(_curve(their_curve25519), msg)
        except Exception as exc:
            raise DecryptionFailed("could not decrypt") from exc
        return OlmSession(s), bytes(plaintext)

    def pickle(self, key: bytes) -> str:
        return str(self._acc.pickle(key))

    @classmethod
    def from_pickle(cls, data: str, key: bytes) -> OlmAccount:
        try:
            return cls(_vz.Account.from_pickle(data, key))
        except Exception as exc:
            raise DecryptionFailed("account pickle could not be opened") from exc


class OlmSession:
    """One Olm session between two devices."""

    __slots__ = ("_s",)

    def __init__(self, s: _vz.Session) -> None:
        self._s = s

    @property
    def session_id(self) -> str:
        return str(self._s.session_id)

    def encrypt(self, plaintext: bytes) -> tuple[int, bytes]:
        t, body = self._s.encrypt(plaintext).to_parts()
        return int(t), bytes(body)

    def matches(self, body: bytes) -> bool:
        """Does this pre-key message belong to this session?"""
        try:
            msg = _vz.AnyOlmMessage.from_parts(PRE_KEY, body).to_pre_key()
            return msg is not None and bool(self._s.session_matches(msg))
        except Exception:
            return False

    def decrypt(self, msg_type: int, body: bytes) -> bytes:
        if msg_type not in (PRE_KEY, NORMAL):
            raise DecryptionFailed("unknown message type")
        try:
            return bytes(self._s.decrypt(_vz.AnyOlmMessage.from_parts(msg_type, body)))
        except Exception as exc:
            raise DecryptionFailed("could not decrypt") from exc

    def pickle(self, key: bytes) -> str:
        return str(self._s.pickle(key))

    @classmethod
    def from_pickle(cls, data: str, key: bytes) -> OlmSession:
        try:
            return cls(_vz.Session.from_pickle(data, key))
        except Exception as exc:
            raise DecryptionFailed("session pickle could not be opened") from exc
