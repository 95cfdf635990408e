"""Trust rules: devices the server adds on its own are never encrypted to."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.conftest import ServerProcess
from tests.integration.people import drain, notices, register, texts
from veil.protocol.olm import OlmAccount


def _server_adds_device(db: Path, handle: str) -> str:
    """What a malicious server would do: list a device of its own for `handle`."""
    rogue = OlmAccount()
    device_id = "ROGUE00001"
    now = int(time.time() * 1000)
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "INSERT INTO devices (device_id, handle, name, curve25519, ed25519, token_hash, state,"
            " created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?)",
            (device_id, handle, "rogue", rogue.curve25519, rogue.ed25519, "0" * 64, now, now),
        )
        conn.commit()
    finally:
        conn.close()
    return device_id


def _envelopes_for(db: Path, device_id: str) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT count(*) FROM envelopes WHERE device_id = ?", (device_id,)).fetchone()
        return int(row[0])
    finally:
        conn.close()


async def test_server_added_device_is_never_sent_to(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        await alice.send_text("bob", "before the rogue device", secret=True)
        rogue = _server_adds_device(server.sqlite_path, "bob")
        await alice.send_text("bob", "after the rogue device", secret=True)
        await alice.send_text("bob", "and once more", secret=True)
        assert _envelopes_for(server.sqlite_path, rogue) == 0
        warnings = notices(alice.messages("bob", secret=True), "untrusted_device")
        assert len(warnings) == 1 and rogue in warnings[0].text
        await drain(bob)
        assert texts(bob.messages("alice", secret=True)) == [
            "before the rogue device", "after the rogue device", "and once more"]
        # bob's own sends to alice skip it too (it is listed for his own account)
        await bob.send_text("alice", "hi from bob", secret=True)
        assert _envelopes_for(server.sqlite_path, rogue) == 0
        assert notices(bob.messages("alice", secret=True), "untrusted_device")
    finally:
        await alice.close()
        await bob.close()
