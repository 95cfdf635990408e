"""Run the Alembic migrations in code, on a connection of the async engine (no alembic.ini)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["upgrade"]

SCRIPT_LOCATION = str(Path(__file__).with_name("migrations"))


def _upgrade_sync(connection: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest revision; safe to call on every start."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(veil_write=True)
        async with conn.begin():
            await conn.run_sync(_upgrade_sync)
