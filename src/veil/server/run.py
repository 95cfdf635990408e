"""`serve(config)`: run the app under uvicorn with the fastest available loop and parsers."""

from __future__ import annotations

import importlib.util
import logging

import uvicorn

from veil.server.app import build_app
from veil.server.config import ServerConfig, redact_db_url
from veil.server.logs import setup_logging

__all__ = ["serve"]

log = logging.getLogger("veil.server")


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def serve(config: ServerConfig) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(config.log_path)
    app = build_app(config)
    print(f"veil server listening on http://{config.host}:{config.port} "
          f"(database {redact_db_url(config.database_url)}, log {config.log_path})", flush=True)
    uv = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop" if _have("uvloop") else "asyncio",
        http="httptools" if _have("httptools") else "h11",
        ws="websockets-sansio" if _have("websockets") else "auto",
        access_log=False,
        log_config=None,  # keep the handlers setup_logging installed
        proxy_headers=False,  # client address for rate limits is the socket peer
        ws_max_size=1024 * 1024,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(uv).run()
