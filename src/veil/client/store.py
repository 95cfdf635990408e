"""The device's local store: one SQLite file in which every value is encrypted.

Keys come from the passphrase through Argon2id (salt and parameters in `store.json`, which
holds nothing secret). Records are sealed with AES-256-GCM bound to their slot, and every
index column is an HMAC of the real key, so the file shows neither text nor names.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from veil.client.errors import StoreError, WrongPassphrase
from veil.protocol.errors import DecryptionFailed
from veil.protocol.keys import derive_passphrase_key, hkdf, hmac_sha256, open_sealed, random_bytes, seal

__all__ = ["Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    thread BLOB NOT NULL,
    mid BLOB NOT NULL UNIQUE,
    v BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_thread ON messages (thread, seq);
CREATE TABLE IF NOT EXISTS seen (h BLOB PRIMARY KEY);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    k BLOB NOT NULL UNIQUE,
    v BLOB NOT NULL
);
"""
_CHECK = b"veil-store-check"
_enc = msgspec.msgpack.Encoder()


class Store:
    """Encrypted key-value records plus ordered per-thread message records.

    Writes join the open transaction until `commit()`. Parts of the device that keep state in
    memory and write it once per transaction (Olm sessions, the thread index) register a hook
    in `before_commit`: every commit writes what they changed first, in the same transaction.
    """

    def __init__(self, db: sqlite3.Connection, master: bytes) -> None:
        self._db = db
        self.before_commit: list[Callable[[], None]] = []
        self._slots: dict[str, bytes] = {}  # name → slot: the same names come back per message
        self._enc_key = hkdf(master, salt=b"", info=b"veil-store-enc")
        self._idx_key = hkdf(master, salt=b"", info=b"veil-store-index")
        self.pickle_key = hkdf(master, salt=b"", info=b"veil-store-pickle")

    # -- opening ---------------------------------------------------------------------------
    @staticmethod
    def exists(profile: Path) -> bool:
        return (profile / "store.json").exists()

    @classmethod
    def create(cls, profile: Path, passphrase: str, *, fast_kdf: bool = False) -> Store:
        if not passphrase:
            raise StoreError("a store passphrase must not be empty")
        profile.mkdir(parents=True, exist_ok=True)
        if cls.exists(profile):
            raise StoreError(f"{profile} already holds a device; use another --profile")
        params = {"v": 1, "salt": random_bytes(16).hex(), "t": 1 if fast_kdf else 3,
                  "m": 8192 if fast_kdf else 65536}
        master = _derive(passphrase, params)
        store = cls(_connect(profile / "store.db"), master)
        store._db.execute("INSERT INTO kv (k, v) VALUES (?, ?)", (store._slot("check"),
                                                                  seal(store._enc_key, _CHECK)))
        store._db.commit()
        (profile / "store.json").write_text(json.dumps(params))
        return store

    @classmethod
    def open(cls, profile: Path, passphrase: str) -> Store:
        try:
            params = json.loads((profile / "store.json").read_text())
        except FileNotFoundError as exc:
            raise StoreError(f"no device in {profile}: register, log in or link first") from exc
        except (OSError, ValueError) as exc:
            raise StoreError(f"{profile}/store.json is damaged") from exc
        store = cls(_connect(profile / "store.db"), _derive(passphrase, params))
        row = store._db.execute("SELECT v FROM kv WHERE k = ?", (store._slot("check"),)).fetchone()
        try:
            if row is None or open_sealed(store._enc_key, row[0]) != _CHECK:
                raise WrongPassphrase("the passphrase does not open this device's store")
        except DecryptionFailed as exc:
            store.close()
            raise WrongPassphrase("the passphrase does not open this device's store") from exc
        return store

    def close(self) -> None:
        self._db.close()

    # -- records ---------------------------------------------------------------------------
    def _slot(self, name: str) -> bytes:
        slot = self._slots.get(name)
        if slot is None:
            if len(self._slots) >= 4096:
                self._slots.clear()
            slot = self._slots[name] = hmac_sha256(self._idx_key, name.encode())[:20]
        return slot

    def get(self, name: str) -> Any:
        slot = self._slot(name)
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (slot,)).fetchone()
        if row is None:
            return None
        return self._open(row[0], slot)

    def put(self, name: str, value: Any, *, commit: bool = True) -> None:
        slot = self._slot(name)
        self._db.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
                         (slot, seal(self._enc_key, _enc.encode(value), aad=slot)))
        if commit:
            self.commit()

    def delete(self, name: str, *, commit: bool = True) -> None:
        self._db.execute("DELETE FROM kv WHERE k = ?", (self._slot(name),))
        if commit:
            self.commit()

    def commit(self) -> None:
        for hook in self.before_commit:
            hook()
        self._db.commit()

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (after deletions)."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- messages --------------------------------------------------------------------------
    def add_message(self, thread: str, message_id: str, value: Any, *, commit: bool = True) -> bool:
        """Append a message to a thread; False (and nothing stored) if the id is known."""
        mid = self._slot("mid:" + message_id)
        tslot = self._slot("thread:" + thread)
        cur = self._db.execute(
            "INSERT OR IGNORE INTO messages (thread, mid, v) VALUES (?, ?, ?)",
            (tslot, mid, seal(self._enc_key, _enc.encode(value), aad=mid)),
        )
        if commit:
            self.commit()
        return cur.rowcount == 1

    def has_message(self, message_id: str) -> bool:
        mid = self._slot("mid:" + message_id)
        return self._db.execute("SELECT 1 FROM messages WHERE mid = ?", (mid,)).fetchone() is not None

    def get_message(self, message_id: str) -> Any:
        mid = self._slot("mid:" + message_id)
        row = self._db.execute("SELECT v FROM messages WHERE mid = ?", (mid,)).fetchone()
        return None if row is None else self._open(row[0], mid)

    def update_message(self, message_id: str, value: Any, *, commit: bool = True) -> None:
        mid = self._slot("mid:" + message_id)
        self._db.execute("UPDATE messages SET v = ? WHERE mid = ?",
                         (seal(self._enc_key, _enc.encode(value), aad=mid), mid))
        if commit:
            self.commit()

    def delete_message(self, message_id: str, *, commit: bool = True) -> None:
        """Remove a message record; the freed pages are zeroed (secure_delete is on)."""
        self._db.execute("DELETE FROM messages WHERE mid = ?", (self._slot("mid:" + message_id),))
        if commit:
            self.commit()

    def messages(self, thread: str) -> list[Any]:
        rows = self._db.execute(
            "SELECT mid, v FROM messages WHERE thread = ? ORDER BY seq", (self._slot("thread:" + thread),)
        ).fetchall()
        return [self._open(v, mid) for mid, v in rows]

    # -- outbox: secret sends committed locally, not yet acknowledged by the server ------------
    def outbox_put(self, key: str, value: Any) -> None:
        """Add (or replace, moving it to the end) an outbox row; joins the open transaction."""
        slot = self._slot("outbox:" + key)
        self._db.execute("INSERT OR REPLACE INTO outbox (k, v) VALUES (?, ?)",
                         (slot, seal(self._enc_key, _enc.encode(value), aad=slot)))

    def outbox_remove(self, keys: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM outbox WHERE k = ?", [(self._slot("outbox:" + k),) for k in keys])

    def outbox(self) -> list[Any]:
        """Every outbox row, oldest first."""
        rows = self._db.execute("SELECT k, v FROM outbox ORDER BY seq").fetchall()
        return [self._open(v, k) for k, v in rows]

    # -- replay protection -----------------------------------------------------------------
    def mark_seen(self, digest: bytes, *, commit: bool = True) -> bool:
        """Remember an envelope digest; False if it was seen before."""
        cur = self._db.execute("INSERT OR IGNORE INTO seen (h) VALUES (?)",
                               (hmac_sha256(self._idx_key, digest)[:20],))
        if commit:
            self.commit()
        return cur.rowcount == 1

    def _open(self, sealed: bytes, aad: bytes) -> Any:
        try:
            return msgspec.msgpack.decode(open_sealed(self._enc_key, sealed, aad=aad))
        except DecryptionFailed as exc:
            raise StoreError("a record in the local store is damaged") from exc


def _derive(passphrase: str, params: dict[str, Any]) -> bytes:
    try:
        salt = bytes.fromhex(str(params["salt"]))
        return derive_passphrase_key(passphrase, salt, time_cost=int(params["t"]),
                                     memory_cost_kib=int(params["m"]))
    except (KeyError, ValueError) as exc:
        raise StoreError("store.json is damaged") from exc


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level="DEFERRED")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA secure_delete=ON")  # deleted (disappeared) records leave no bytes behind
        db.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the local store at {path}: {exc}") from exc
    return db
