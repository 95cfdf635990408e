"""Server storage: the `Store` interface (base), its tables (schema) and the SQL implementation."""

from veil.server.storage.base import Store
from veil.server.storage.sql import SqlStore

__all__ = ["SqlStore", "Store"]
