"""`build_app`: every service built once and wired through constructors (no globals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.types import Receive, Scope, Send

from veil.server.bus import RedisBus
from veil.server.clock import Clock, SystemClock
from veil.server.config import ServerConfig
from veil.server.errors import install_error_handlers
from veil.server.hub import Hub
from veil.server.metrics import CONTENT_TYPE_LATEST, Metrics
from veil.server.middleware import AccessLogMiddleware, BodyLimitMiddleware
from veil.server.routes.accounts import accounts_router
from veil.server.routes.blobs import blobs_router
from veil.server.routes.blocks import blocks_router
from veil.server.routes.deps import make_auth
from veil.server.routes.health import health_router
from veil.server.routes.keys import keys_router
from veil.server.routes.links import links_router
from veil.server.routes.messages import messages_router
from veil.server.routes.reports import reports_router
from veil.server.routes.stream import STREAM_PATH, StreamEndpoint
from veil.server.routes.threads import threads_router
from veil.server.services.accounts import AccountService
from veil.server.services.blobs import BlobService
from veil.server.services.blocks import BlockService
from veil.server.services.directory import Directory
from veil.server.services.franking import Franker
from veil.server.services.keys import KeyService
from veil.server.services.links import LinkService
from veil.server.services.mailbox import MailboxService
from veil.server.services.ratelimit import LoginLimiter
from veil.server.services.reports import ReportService
from veil.server.services.sends import StreamSender, after_commit
from veil.server.services.threads import ThreadService
from veil.server.services.wordlist import WordList
from veil.server.services.writer import GroupWriter
from veil.server.storage.base import Store
from veil.server.storage.group_sql import group_backend
from veil.server.storage.sql import SqlStore

__all__ = ["VeilApp", "build_app"]

log = logging.getLogger("veil.server")


async def _purge_forever(mailbox: MailboxService, blobs: BlobService, interval: float) -> None:
    while True:
        try:
            await mailbox.purge()
            await blobs.purge()
        except (OperationalError, InterfaceError, OSError) as exc:
            log.warning("purge failed (%s); will retry", type(exc).__name__)
        await asyncio.sleep(interval)


class VeilApp(FastAPI):
    """FastAPI, except that WS /v1/stream goes straight to its endpoint: no middleware, router or
    WebSocket wrapper on the hot path and in every idle connection's memory."""

    def __init__(self, stream: StreamEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == STREAM_PATH:
            await self.stream(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def build_app(config: ServerConfig, *, clock: Clock | None = None, store: Store | None = None) -> FastAPI:
    """The ASGI app. `store` defaults to a SqlStore on `config.database_url`; it is migrated on
    startup and closed on shutdown."""
    clock = clock or SystemClock()
    store = store if store is not None else SqlStore(config.database_url)
    metrics = Metrics()
    bus = RedisBus(config.redis_url, config.redis_prefix, metrics.redis_up.set) if config.redis_url else None
    hub = Hub(bus)
    limiter = LoginLimiter(clock, per_handle=config.login_failures_per_handle,
                           per_address=config.login_failures_per_address, window_s=config.login_window)
    hasher = PasswordHasher(time_cost=config.argon2_time_cost, memory_cost=config.argon2_memory_kib)
    accounts = AccountService(store, clock, hub, limiter, hasher)
    keys = KeyService(store, hub)
    franker = Franker(store)
    mailbox = MailboxService(store, clock, hub, franker, envelope_max_age_ms=config.envelope_max_age * 1000,
                             metadata_max_age_ms=config.metadata_max_age * 1000,
                             metrics=metrics)
    words = WordList.load(config.word_list) if config.word_list is not None else None
    threads = ThreadService(store, clock, hub, words)
    links = LinkService(store, clock)
    blobs = BlobService(store, clock, config.blob_dir, max_size=config.max_blob_size)
    blocks = BlockService(store, clock, hub)
    # The stream send path: cached device/block lists (dropped on every change, on every node;
    # with several nodes also after recheck_interval) and one group-commit writer per process.
    directory = Directory(store, ttl=config.recheck_interval if config.multi_node else None)
    hub.on_invalidate(lambda handle: directory.clear() if handle is None else directory.invalidate(handle))
    group: GroupWriter | None = None
    sends: StreamSender | None = None
    if isinstance(store, SqlStore):
        group = GroupWriter(group_backend(store.engine), after_commit(hub, metrics))
        sends = StreamSender(store, clock, directory, franker, group)
        mailbox.use_group(group)
    reports = ReportService(store, clock, franker, blobs)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.migrate:
            await store.migrate()
        if bus is not None:
            bus.start(hub)
        purger = asyncio.create_task(_purge_forever(mailbox, blobs, config.purge_interval))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            if bus is not None:
                await bus.stop()
            if group is not None:
                await group.close()
            await store.close()

    stream = StreamEndpoint(accounts, mailbox, keys, hub,
                            recheck=config.recheck_interval if config.multi_node else None,
                            on_open=metrics.connections.inc, sends=sends, group=group)
    app = VeilApp(stream, title="Veil server", version="1", lifespan=lifespan,
                  description="Regular threads readable on the server; secret threads relayed as "
                              "Olm ciphertext. See docs/api.md.")
    app.state.store = store
    app.state.hub = hub
    app.state.mailbox = mailbox
    app.state.blobs = blobs
    app.state.metrics = metrics
    install_error_handlers(app)

    auth = make_auth(accounts)
    app.include_router(health_router())
    app.include_router(accounts_router(accounts, auth))
    app.include_router(keys_router(keys, auth))
    app.include_router(messages_router(mailbox, auth))
    app.include_router(threads_router(threads, auth))
    app.include_router(links_router(links, auth))
    app.include_router(blobs_router(blobs, auth))
    app.include_router(blocks_router(blocks, auth))
    app.include_router(reports_router(reports, auth))

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        body = await metrics.render(store.count_envelopes)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # Added last = outermost: the size limit runs before anything reads the body. Blob uploads
    # stream to disk under their own limit (--max-blob-size), so they are exempt.
    app.add_middleware(BodyLimitMiddleware, max_body=config.max_body, exempt=("/v1/blobs",))
    app.add_middleware(AccessLogMiddleware, metrics=metrics)
    return app
