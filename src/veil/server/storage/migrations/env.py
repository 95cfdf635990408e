"""Alembic env: always handed an open connection by `migrate.upgrade` (no alembic.ini, no URL here)."""

from __future__ import annotations

from alembic import context

from veil.server.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by running the alembic CLI by hand
    raise RuntimeError("run migrations through veil.server.storage.migrate.upgrade()")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
