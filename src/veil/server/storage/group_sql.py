"""The group writer's SQL, per backend, on the raw driver connection.

Each `write` call is ONE transaction holding every batch and acknowledgement collected during
one event-loop tick: one multi-row statement per table (sent_batches, envelopes, envelope_log, and
the DELETE for all acks). No SQLAlchemy statement is compiled here: the SQL is fixed text and
the drivers cache their prepared statements, which is what made per-message ORM work the
bottleneck of the REST path.

Ids of new envelopes: SQLite gives each inserted row max(rowid) + 1 and we hold the write lock,
so one executemany yields consecutive ids ending at last_insert_rowid(). PostgreSQL evaluates
nextval per row in the order listed; RETURNING promises no order, so its ids are sorted.

- SQLite: a dedicated thread owns one `sqlite3` connection; a flush is one thread hop, and each
  table gets one executemany of a prepared statement (measured faster than multi-row VALUES,
  whose text differs with every group size and must be parsed again).
- PostgreSQL: a small asyncpg pool of its own (no SQLAlchemy checkout, no pre-ping round trip);
  arrays + unnest give one statement per table whatever the group size.

`fetch` is the streams' mailbox read on the same raw connections: one prepared SELECT, no
explicit transaction (a single statement sees one snapshot), rows straight into EnvelopeRow.
With several nodes every cross-node wake-up ends in such a read, so its round trips count.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from veil.server.storage.base import EnvelopeRow, NewEnvelope
from veil.server.storage.checkpoint import Checkpointer

__all__ = ["BatchIn", "BatchOut", "GroupBackend", "PgGroup", "SqliteGroup", "group_backend"]



@dataclass(frozen=True, slots=True)
class BatchIn:
    sender_device: str
    client_message_id: str
    server_ts: int
    count: int  # the answer recorded for retries
    rows: Sequence[NewEnvelope]


@dataclass(frozen=True, slots=True)
class BatchOut:
    created: bool
    server_ts: int
    count: int
    ids: list[int]  # ids of `rows` in order; empty when not created (an earlier batch had the key)


class GroupBackend(Protocol):
    async def write(self, batches: Sequence[BatchIn], acks: Sequence[tuple[str, int]]
                    ) -> tuple[list[BatchOut], int]:
        """One transaction; (one answer per batch, envelopes deleted by the acks). The batch keys
        must be distinct (the caller de-duplicates within a group)."""

    async def fetch(self, device_id: str, after_id: int, limit: int) -> list[EnvelopeRow]:
        """The device's envelopes with id > after_id, oldest first, at most `limit`."""

    async def close(self) -> None: ...


_FETCH_COLS = ("id, device_id, kind, sender, sender_device, server_ts, olm_type, body, client_message_id, "
               "commitment, franking_tag")


def _row(r: Sequence[Any]) -> EnvelopeRow:
    return EnvelopeRow(id=r[0], device_id=r[1], kind=r[2], sender=r[3], sender_device=r[4], server_ts=r[5],
                       olm_type=r[6], body=bytes(r[7]), client_message_id=r[8], commitment=bytes(r[9] or b""),
                       franking_tag=bytes(r[10] or b""))


def _env_params(r: NewEnvelope) -> tuple[Any, ...]:
    return (r.device_id, r.kind, r.sender, r.sender_device, r.server_ts, r.olm_type, r.body,
            r.client_message_id, r.commitment or None, r.franking_tag or None)


def _log_params(r: NewEnvelope) -> tuple[Any, ...]:
    return (r.sender, r.sender_device, r.recipient_handle, r.device_id, r.server_ts, len(r.body))


_ENV_COLS = ("device_id, kind, sender, sender_device, server_ts, olm_type, body, client_message_id, "
             "commitment, franking_tag")
_LOG_COLS = "sender, sender_device, recipient_handle, recipient_device, server_ts, size"


def _answers(batches: Sequence[BatchIn], created: set[tuple[str, str]], ids: list[int],
             earlier: dict[tuple[str, str], Sequence[Any]]) -> list[BatchOut]:
    """One answer per batch: a new one gets its share of `ids` (in order); a retry gets what the
    first call was answered, (server_ts, count) from `earlier`."""
    out: list[BatchOut] = []
    i = 0
    for b in batches:
        key = (b.sender_device, b.client_message_id)
        if key in created:
            out.append(BatchOut(True, b.server_ts, b.count, ids[i:i + len(b.rows)]))
            i += len(b.rows)
        else:
            ts, n = earlier[key]
            out.append(BatchOut(False, int(ts), int(n), []))
    return out


_SQLITE_BATCH = ("INSERT INTO sent_batches (sender_device, client_message_id, server_ts, count) "
                 "VALUES (?,?,?,?) ON CONFLICT DO NOTHING")
_SQLITE_ENVELOPE = f"INSERT INTO envelopes ({_ENV_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
_SQLITE_LOG = f"INSERT INTO envelope_log ({_LOG_COLS}) VALUES (?,?,?,?,?,?)"
_SQLITE_FETCH = f"SELECT {_FETCH_COLS} FROM envelopes WHERE device_id = ? AND id > ? ORDER BY id LIMIT ?"


class SqliteGroup:
    def __init__(self, path: str) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veil-writer")
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            # Autocommit mode: we issue BEGIN IMMEDIATE ourselves, as the engine does (dialect.py).
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False,
                                   cached_statements=512)
            for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL",
                           "wal_autocheckpoint=0"):  # checkpoints run in `Checkpointer`, not in our commits
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
            self._checkpointer = Checkpointer(self._path)
            self._checkpointer.start()
        return self._conn

    def _write(self, batches: Sequence[BatchIn], acks: Sequence[tuple[str, int]]) -> tuple[list[BatchOut], int]:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            created = self._claim_keys(conn, batches)
            rows = [r for b in batches if (b.sender_device, b.client_message_id) in created for r in b.rows]
            ids: list[int] = []
            if rows:
                conn.executemany(_SQLITE_ENVELOPE, [_env_params(r) for r in rows])
                # Consecutive rowids under the write lock (each is max + 1): the last one names all.
                (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
                ids = list(range(last - len(rows) + 1, last + 1))
                conn.executemany(_SQLITE_LOG, [_log_params(r) for r in rows])
            deleted = 0
            if acks:
                before = conn.total_changes
                conn.executemany("DELETE FROM envelopes WHERE id = ? AND device_id = ?", [(i, d) for d, i in acks])
                deleted = conn.total_changes - before
            earlier = {}
            for b in batches:
                key = (b.sender_device, b.client_message_id)
                if key not in created:
                    earlier[key] = conn.execute(
                        "SELECT server_ts, count FROM sent_batches WHERE sender_device = ? AND client_message_id = ?",
                        key).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return _answers(batches, created, ids, earlier), deleted

    @staticmethod
    def _claim_keys(conn: sqlite3.Connection, batches: Sequence[BatchIn]) -> set[tuple[str, str]]:
        """Record every batch key; the keys that were new. executemany (one prepared statement,
        a C loop) is faster than a multi-row VALUES that must be parsed for each group size."""
        keys = {(b.sender_device, b.client_message_id) for b in batches}
        if not batches:
            return keys
        params = [(b.sender_device, b.client_message_id, b.server_ts, b.count) for b in batches]
        conn.execute("SAVEPOINT claim")
        before = conn.total_changes
        conn.executemany(_SQLITE_BATCH, params)
        if conn.total_changes - before == len(batches):
            conn.execute("RELEASE claim")
            return keys
        # Some key was taken already (a retry): redo row by row to learn which (rare).
        conn.execute("ROLLBACK TO claim")
        conn.execute("RELEASE claim")
        created = set()
        for p in params:
            if conn.execute(_SQLITE_BATCH, p).rowcount == 1:
                created.add((p[0], p[1]))
        return created

    async def write(self, batches: Sequence[BatchIn], acks: Sequence[tuple[str, int]]
                    ) -> tuple[list[BatchOut], int]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._write, batches, acks)

    def _fetch(self, device_id: str, after_id: int, limit: int) -> list[EnvelopeRow]:
        rows = self._connect().execute(_SQLITE_FETCH, (device_id, after_id, limit)).fetchall()
        return [_row(r) for r in rows]

    async def fetch(self, device_id: str, after_id: int, limit: int) -> list[EnvelopeRow]:
        # On the writer's thread and connection: it sees every committed group, and a read
        # queued behind a commit waits at most one commit.
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._fetch, device_id, after_id, limit)

    async def close(self) -> None:
        def _close() -> None:
            if self._checkpointer is not None:
                self._checkpointer.stop()
                self._checkpointer = None
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._pool, _close)
        self._pool.shutdown(wait=True)


_PG_BATCHES = ("INSERT INTO sent_batches (sender_device, client_message_id, server_ts, count) "
               "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[]) "
               "ON CONFLICT DO NOTHING RETURNING sender_device, client_message_id")
_PG_ENVELOPES = (f"INSERT INTO envelopes ({_ENV_COLS}) SELECT * FROM unnest($1::text[], $2::int[], $3::text[], "
                 "$4::text[], $5::bigint[], $6::int[], $7::bytea[], $8::text[], $9::bytea[], $10::bytea[]) "
                 "RETURNING id")
_PG_LOG = (f"INSERT INTO envelope_log ({_LOG_COLS}) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
           "$4::text[], $5::bigint[], $6::int[])")
_PG_ACKS = ("DELETE FROM envelopes e USING unnest($1::text[], $2::bigint[]) AS a(device_id, id) "
            "WHERE e.device_id = a.device_id AND e.id = a.id")
_PG_EARLIER = "SELECT server_ts, count FROM sent_batches WHERE sender_device = $1 AND client_message_id = $2"
_PG_FETCH = f"SELECT {_FETCH_COLS} FROM envelopes WHERE device_id = $1 AND id > $2 ORDER BY id LIMIT $3"
PG_POOL_SIZE = 4  # the writer holds one at a time; the rest serve the streams' reads


def _columns(params: list[tuple[Any, ...]], n: int) -> list[list[Any]]:
    return [list(col) for col in zip(*params, strict=True)] if params else [[] for _ in range(n)]


class PgGroup:
    def __init__(self, engine: AsyncEngine) -> None:
        # The engine's URL, for the driver itself (asyncpg takes a plain postgresql:// DSN).
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _connections(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    # A connection that breaks (server restart, pg_terminate_backend) raises once in
                    # the statement that used it and is replaced on release.
                    self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=PG_POOL_SIZE,
                                                           timeout=30, command_timeout=60)
        return self._pool

    async def fetch(self, device_id: str, after_id: int, limit: int) -> list[EnvelopeRow]:
        pool = await self._connections()
        return [_row(r) for r in await pool.fetch(_PG_FETCH, device_id, after_id, limit)]

    async def write(self, batches: Sequence[BatchIn], acks: Sequence[tuple[str, int]]
                    ) -> tuple[list[BatchOut], int]:
        pool = await self._connections()
        async with pool.acquire() as raw:
            async with raw.transaction():
                got = await raw.fetch(_PG_BATCHES, [b.sender_device for b in batches],
                                      [b.client_message_id for b in batches], [b.server_ts for b in batches],
                                      [b.count for b in batches])
                created = {(r[0], r[1]) for r in got}
                rows = [r for b in batches if (b.sender_device, b.client_message_id) in created for r in b.rows]
                ids: list[int] = []
                if rows:
                    ids = sorted(r[0] for r in await raw.fetch(_PG_ENVELOPES,
                                                                *_columns([_env_params(r) for r in rows], 10)))
                    await raw.execute(_PG_LOG, *_columns([_log_params(r) for r in rows], 6))
                deleted = 0
                if acks:
                    status = await raw.execute(_PG_ACKS, [a[0] for a in acks], [a[1] for a in acks])
                    deleted = int(status.rsplit(" ", 1)[-1])
                earlier = {}
                for b in batches:
                    key = (b.sender_device, b.client_message_id)
                    if key not in created:
                        earlier[key] = await raw.fetchrow(_PG_EARLIER, *key)
        return _answers(batches, created, ids, earlier), deleted

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def group_backend(engine: AsyncEngine) -> GroupBackend:
    if engine.dialect.name == "postgresql":
        return PgGroup(engine)
    path = engine.url.database
    if not path or path == ":memory:":
        raise ValueError("the group writer needs a file-backed SQLite database or PostgreSQL")
    return SqliteGroup(path)
