"""Olm sessions per peer device: created from claimed, signature-checked one-time keys.

A session that changes (every encryption and decryption advances its ratchet) is marked dirty
and pickled once per store transaction, by a `before_commit` hook: whatever commits the
transaction that holds a ciphertext (the outbox) or a decrypted message also holds the session
state that made it, and a batch of 100 messages from one device costs one pickle, not 100."""

from __future__ import annotations

from veil.client.api import ServerAPI
from veil.client.store import Store
from veil.protocol.devicelist import DeviceEntry
from veil.protocol.errors import DecryptionFailed, SignatureInvalid
from veil.protocol.olm import PRE_KEY, OlmAccount, OlmSession
from veil.protocol.prekeys import verify_prekey

__all__ = ["Sessions"]

_MAX_SESSIONS_PER_DEVICE = 4


class Sessions:
    def __init__(self, store: Store, account: OlmAccount) -> None:
        self._store = store
        self._account = account
        self._cache: dict[str, list[OlmSession]] = {}
        self._dirty: set[str] = set()
        self.account_dirty = False  # an inbound session used up a one-time key
        store.before_commit.append(self.flush)

    def _load(self, curve: str) -> list[OlmSession]:
        if curve not in self._cache:
            pickles = self._store.get(f"sessions:{curve}") or []
            self._cache[curve] = [OlmSession.from_pickle(p, self._store.pickle_key) for p in pickles]
        return self._cache[curve]

    def _save(self, curve: str) -> None:
        sessions = self._cache[curve]
        if len(sessions) > _MAX_SESSIONS_PER_DEVICE:
            del sessions[_MAX_SESSIONS_PER_DEVICE:]
        self._dirty.add(curve)

    def flush(self) -> None:
        """Write every session changed since the last commit (into the open transaction)."""
        if not self._dirty:
            return
        key = self._store.pickle_key
        for curve in self._dirty:
            self._store.put(f"sessions:{curve}", [s.pickle(key) for s in self._cache[curve]], commit=False)
        self._dirty.clear()

    def has_session(self, curve: str) -> bool:
        return bool(self._load(curve))

    async def ensure(self, api: ServerAPI, targets: list[tuple[str, DeviceEntry]]) -> list[tuple[str, str]]:
        """Start sessions with every target that has none; return (handle, device) left without one."""
        need = [(h, d) for h, d in targets if not self.has_session(d.curve25519)]
        if not need:
            return []
        claimed = await api.claim([(h, d.device_id) for h, d in need])
        by_device = {(str(k["handle"]), str(k["device_id"])): k for k in claimed}
        failed: list[tuple[str, str]] = []
        for handle, entry in need:
            k = by_device.get((handle, entry.device_id))
            if k is None:
                failed.append((handle, entry.device_id))
                continue
            try:
                verify_prekey(entry.ed25519, handle, entry.device_id, str(k["key_id"]), str(k["key"]),
                              str(k["signature"]), fallback=bool(k.get("fallback", False)))
            except SignatureInvalid:
                failed.append((handle, entry.device_id))
                continue
            session = self._account.outbound_session(entry.curve25519, str(k["key"]))
            self._load(entry.curve25519).insert(0, session)
            self._save(entry.curve25519)
        return failed

    def encrypt(self, curve: str, plaintext: bytes) -> tuple[int, bytes]:
        session = self._load(curve)[0]
        out = session.encrypt(plaintext)
        self._save(curve)
        return out

    def decrypt(self, curve: str, olm_type: int, body: bytes) -> bytes:
        """Decrypt with a known session, or start one from a pre-key message."""
        sessions = self._load(curve)
        for i, s in enumerate(sessions):
            if olm_type == PRE_KEY and not s.matches(body):
                continue
            try:
                plaintext = s.decrypt(olm_type, body)
            except DecryptionFailed:
                continue
            if i:
                sessions.insert(0, sessions.pop(i))  # the newest working session sends next
            self._save(curve)
            return plaintext
        if olm_type != PRE_KEY:
            raise DecryptionFailed("no session decrypts this message")
        session, plaintext = self._account.inbound_session(curve, body)
        self.account_dirty = True
        sessions.insert(0, session)
        self._save(curve)
        return plaintext
