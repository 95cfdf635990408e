"""Alembic environment for the server schema; run in code by `veil.server.storage.migrate`."""
