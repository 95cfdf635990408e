"""The few places where SQLite and PostgreSQL need different SQL or engine settings.

Everything else in `sql.py` is portable SQLAlchemy Core.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from veil.server.storage.schema import fallback_keys, one_time_keys

__all__ = ["claim_one_time_key", "insert_ignore", "make_engine", "upsert"]

WRITE = "veil_write"  # execution option: open the transaction as a writer (SQLite BEGIN IMMEDIATE)


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _tune_sqlite(engine)
        return engine
    # hide_parameters: a database error's text never carries bodies, keys or token hashes.
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True)


def _tune_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot BEGIN IMMEDIATE; we take over
    # (SQLAlchemy's documented recipe) so that writers queue on busy_timeout instead of
    # failing with "database is locked" when two deferred transactions both upgrade to write.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def _insert_for(conn: AsyncConnection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(conn: AsyncConnection, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING (same spelling on both backends, different classes)."""
    return _insert_for(conn, table).on_conflict_do_nothing()


def upsert(conn: AsyncConnection, table: Table, key: list[str], values: dict[str, Any]) -> Any:
    stmt = _insert_for(conn, table).values(**values)
    return stmt.on_conflict_do_update(index_elements=key,
                                      set_={k: v for k, v in values.items() if k not in key})


async def claim_one_time_key(conn: AsyncConnection, device_id: str) -> tuple[str, str, str] | None:
    """Remove one one-time key of the device and return (key_id, key, signature), or None.

    PostgreSQL: lock one row, skipping rows other claimers hold, then delete it.
    SQLite: one DELETE ... RETURNING; the write transaction (BEGIN IMMEDIATE) serialises claimers.
    """
    otk = one_time_keys.c
    if conn.dialect.name == "postgresql":
        row = (await conn.execute(
            select(otk.id, otk.key_id, otk.key, otk.signature)
            .where(otk.device_id == device_id).order_by(otk.id).limit(1)
            .with_for_update(skip_locked=True))).first()
        if row is None:
            return None
        await conn.execute(delete(one_time_keys).where(otk.id == row.id))
        return row.key_id, row.key, row.signature
    first = select(otk.id).where(otk.device_id == device_id).order_by(otk.id).limit(1).scalar_subquery()
    gone = (await conn.execute(
        delete(one_time_keys).where(otk.id == first).returning(otk.key_id, otk.key, otk.signature))).first()
    return None if gone is None else (gone.key_id, gone.key, gone.signature)


async def fallback_key(conn: AsyncConnection, device_id: str) -> tuple[str, str, str] | None:
    fk = fallback_keys.c
    q = select(fk.key_id, fk.key, fk.signature).where(fk.device_id == device_id)
    row = (await conn.execute(q)).first()
    return None if row is None else (row.key_id, row.key, row.signature)
