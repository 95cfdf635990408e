"""The Veil relay server: REST + WebSocket ASGI app over SQLite or PostgreSQL.

routes/ (HTTP, pydantic) → services/ (rules) → storage/ (SQL). Built by `build_app`,
run by `serve` or `python -m veil.server`.
"""

from veil.server.app import build_app
from veil.server.config import ServerConfig
from veil.server.run import serve

__all__ = ["ServerConfig", "build_app", "serve"]
