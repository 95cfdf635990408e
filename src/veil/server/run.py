"""`serve(config)`: run the app under uvicorn with the fastest available loop and parsers.

With `workers > 1` (PostgreSQL only) the parent migrates the database once, hands the config to
the workers in an environment variable and lets uvicorn start N processes on one port; each
worker builds its app with `app_from_env()`. Sibling workers wake each other's streams through
Redis when `--redis` is given; without it their streams still see everything through the
periodic mailbox re-check (delayed by up to `recheck_interval`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib.util
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from veil.server.app import build_app
from veil.server.config import ServerConfig, redact_db_url
from veil.server.logs import setup_logging
from veil.server.storage.sql import SqlStore
from veil.server.wsproto import LeanWebSocketProtocol

__all__ = ["ENV_CONFIG", "app_from_env", "config_from_env", "config_to_env", "serve"]

log = logging.getLogger("veil.server")

ENV_CONFIG = "VEIL_SERVER_CONFIG"
_PATHS = ("data_dir", "log_file", "word_list")


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def config_to_env(config: ServerConfig) -> str:
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}
    return json.dumps(values)


def config_from_env() -> ServerConfig:
    values: dict[str, Any] = json.loads(os.environ[ENV_CONFIG])
    for k in _PATHS:
        if values.get(k) is not None:
            values[k] = Path(values[k])
    return ServerConfig(**values)


def app_from_env() -> FastAPI:
    """The uvicorn factory each worker process calls."""
    config = config_from_env()
    setup_logging(config.log_path, json_lines=config.log_format == "json")
    tune_gc()
    return build_app(config)


async def _migrate(url: str) -> None:
    store = SqlStore(url)
    try:
        await store.migrate()
    finally:
        await store.close()


def _uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    return {
        "host": config.host,
        "port": config.port,
        "loop": "uvloop" if _have("uvloop") else "asyncio",
        "http": "httptools" if _have("httptools") else "h11",
        # uvicorn's websockets-sansio protocol, minus the handshake objects it keeps (wsproto.py).
        "ws": LeanWebSocketProtocol,
        "access_log": False,
        "log_config": None,  # keep the handlers setup_logging installed
        "proxy_headers": False,  # client address for rate limits is the socket peer
        "ws_max_size": 1024 * 1024,
        # Frames carry ciphertext, which does not compress: permessage-deflate only cost CPU per
        # frame (about 8 % of the server in the delivery profile) and a zlib context per stream.
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": 5,
        "backlog": 4096,  # 1,000 devices connecting at once
    }


def tune_gc() -> None:
    """The delivery path allocates a few dozen short-lived objects per message; with the default
    gen0 threshold (700) the collector ran every few dozen messages and walked the long-lived
    heap (streams, slots, caches) far too often: in the profile its pauses landed on whichever
    line allocated, and on tail latency. Freeze what startup made and collect young objects in
    larger steps."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def serve(config: ServerConfig) -> None:
    tune_gc()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(config.log_path, json_lines=config.log_format == "json")
    where = (f"database {redact_db_url(config.database_url)}, log {config.log_path}"
             + (f", redis {redact_db_url(config.redis_url)}" if config.redis_url else "")
             + (f", {config.workers} workers" if config.workers > 1 else ""))
    print(f"veil server listening on http://{config.host}:{config.port} ({where})", flush=True)
    if config.workers == 1:
        uvicorn.Server(uvicorn.Config(build_app(config), **_uvicorn_options(config))).run()
        return
    asyncio.run(_migrate(config.database_url))  # once, before any worker starts
    if config.redis_url is None:
        log.warning("--workers without --redis: streams see other workers' messages on re-check only "
                    "(every %.1f s)", config.recheck_interval)
    os.environ[ENV_CONFIG] = config_to_env(dataclasses.replace(config, migrate=False))
    # Every worker writes its metrics here; /metrics sums them (prometheus_client multiprocess mode).
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="veil-metrics-"))
    uvicorn.run("veil.server.run:app_from_env", factory=True, workers=config.workers,
                **_uvicorn_options(config))
