"""The server cannot read secret threads: markers never reach its storage or logs."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from tests.conftest import ServerProcess
from tests.integration.people import drain, link_second, register, texts


async def _pg_dump(db_url: str) -> bytes:
    """Every row of every table of the server's PostgreSQL database, as text."""
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        out = []
        for t in tables:
            rows = await conn.fetch(f'SELECT * FROM "{t["tablename"]}"')
            for r in rows:
                for v in r.values():
                    out.append(v if isinstance(v, bytes) else str(v).encode())
        return b"\n".join(out)
    finally:
        await conn.close()


def _files_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())


async def test_secret_marker_is_nowhere_on_the_server(any_server: ServerProcess, tmp_path: Path) -> None:
    regular_marker = "REGULAR-" + secrets.token_hex(8)
    secret_marker = "SECRET-" + secrets.token_hex(8)
    a1 = await register(any_server.url, tmp_path, "alice")
    b1 = await register(any_server.url, tmp_path, "bob")
    a2 = await link_second(a1, tmp_path)
    devices = [a1, a2, b1]
    try:
        await a1.send_text("bob", f"hello {regular_marker}", secret=False)
        await a1.send_text("bob", f"psst {secret_marker}", secret=True)
        await b1.send_text("alice", f"reply {secret_marker}", secret=True)
        # check the server while envelopes are still queued, and again after delivery
        snapshots = []
        if any_server.db_url:
            snapshots.append(await _pg_dump(any_server.db_url))
        else:
            snapshots.append(_files_under(any_server.data_dir))
        for d in devices:
            await drain(d)
        assert secret_marker in texts(b1.messages("alice", secret=True))[0]
        assert secret_marker in texts(a2.messages("bob", secret=True))[0]
        await asyncio.sleep(0.2)
        if any_server.db_url:
            snapshots.append(await _pg_dump(any_server.db_url))
        snapshots.append(_files_under(any_server.data_dir))  # SQLite file, WAL, logs, process output
        snapshots.append(any_server.log_bytes())
        everything = b"\n".join(snapshots)
        assert regular_marker.encode() in everything  # regular threads are stored readable
        assert secret_marker.encode() not in everything
        for d in devices:
            store_bytes = _files_under(d.profile)
            assert secret_marker.encode() not in store_bytes
            assert regular_marker.encode() not in store_bytes  # the device store is encrypted too
            assert b"alice" not in store_bytes and b"bob" not in store_bytes
    finally:
        for d in devices:
            await d.close()
