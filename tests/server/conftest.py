"""Fixtures for server tests: a fresh store on SQLite (temp file) and on PostgreSQL.

PostgreSQL: one database `veil_test_<hex>` per session, made in the admin database named by
VEIL_TEST_POSTGRES_URL and dropped at the end; tables are emptied before each test. When the
server is unreachable the PostgreSQL cases are skipped, except in CI (CI=true) where they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from veil.server.config import normalise_db_url
from veil.server.storage.sql import SqlStore

PG_ADMIN_URL = os.environ.get("VEIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
TABLES = ("reports", "blocks", "blob_downloads", "blobs", "envelope_log", "server_secrets", "links",
          "regular_messages", "sent_batches", "envelopes", "fallback_keys", "one_time_keys",
          "device_lists", "devices", "accounts")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    try:
        asyncio.run(_admin("SELECT 1"))
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    name = f"veil_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield normalise_db_url(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'veil.db'}"
    return str(request.getfixturevalue("pg_url"))


async def empty_tables(store: SqlStore) -> None:
    if store.engine.dialect.name == "postgresql":
        async with store.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def fresh_db(db_url: str) -> str:
    """`db_url`, migrated and emptied before any app starts on it (its purge task would race TRUNCATE)."""
    s = SqlStore(db_url)
    try:
        await s.migrate()
        await empty_tables(s)
    finally:
        await s.close()
    return db_url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlStore]:
    s = SqlStore(db_url)
    await s.migrate()
    await empty_tables(s)
    try:
        yield s
    finally:
        await s.close()
