"""The engine and transaction helpers every part of `SqlStore` shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from veil.server.storage import migrate
from veil.server.storage.dialect import WRITE, make_engine

__all__ = ["SqlBase"]


class SqlBase:
    def __init__(self, url: str) -> None:
        """`url` is an async SQLAlchemy URL (sqlite+aiosqlite:// or postgresql+asyncpg://)."""
        self.engine: AsyncEngine = make_engine(url)
        self._writer = self.engine.execution_options(**{WRITE: True})

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._writer.begin() as conn:
            yield conn

    # -- lifecycle -------------------------------------------------------------------------
    async def migrate(self) -> None:
        await migrate.upgrade(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()
