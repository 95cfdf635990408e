"""`build_app`: every service built once and wired through constructors (no globals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.exc import InterfaceError, OperationalError

from veil.server.clock import Clock, SystemClock
from veil.server.config import ServerConfig
from veil.server.errors import install_error_handlers
from veil.server.hub import Hub
from veil.server.middleware import AccessLogMiddleware, BodyLimitMiddleware
from veil.server.routes.accounts import accounts_router
from veil.server.routes.deps import make_auth
from veil.server.routes.health import health_router
from veil.server.routes.keys import keys_router
from veil.server.routes.links import links_router
from veil.server.routes.messages import messages_router
from veil.server.routes.stream import stream_router
from veil.server.routes.threads import threads_router
from veil.server.services.accounts import AccountService
from veil.server.services.keys import KeyService
from veil.server.services.links import LinkService
from veil.server.services.mailbox import MailboxService
from veil.server.services.ratelimit import LoginLimiter
from veil.server.services.threads import ThreadService
from veil.server.storage.base import Store
from veil.server.storage.sql import SqlStore

__all__ = ["build_app"]

log = logging.getLogger("veil.server")


async def _purge_forever(mailbox: MailboxService, interval: float) -> None:
    while True:
        try:
            await mailbox.purge()
        except (OperationalError, InterfaceError, OSError) as exc:
            log.warning("purge failed (%s); will retry", type(exc).__name__)
        await asyncio.sleep(interval)


def build_app(config: ServerConfig, *, clock: Clock | None = None, store: Store | None = None) -> FastAPI:
    """The ASGI app. `store` defaults to a SqlStore on `config.database_url`; it is migrated on
    startup and closed on shutdown."""
    clock = clock or SystemClock()
    store = store if store is not None else SqlStore(config.database_url)
    hub = Hub()
    limiter = LoginLimiter(clock, per_handle=config.login_failures_per_handle,
                           per_address=config.login_failures_per_address, window_s=config.login_window)
    hasher = PasswordHasher(time_cost=config.argon2_time_cost, memory_cost=config.argon2_memory_kib)
    accounts = AccountService(store, clock, hub, limiter, hasher)
    keys = KeyService(store, hub)
    mailbox = MailboxService(store, clock, hub, envelope_max_age_ms=config.envelope_max_age * 1000)
    threads = ThreadService(store, clock, hub)
    links = LinkService(store, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.migrate()
        purger = asyncio.create_task(_purge_forever(mailbox, config.purge_interval))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await store.close()

    app = FastAPI(title="Veil server", version="1", lifespan=lifespan,
                  description="Regular threads readable on the server; secret threads relayed as "
                              "Olm ciphertext. See docs/api.md.")
    app.state.store = store
    app.state.hub = hub
    app.state.mailbox = mailbox
    install_error_handlers(app)

    auth = make_auth(accounts)
    app.include_router(health_router())
    app.include_router(accounts_router(accounts, auth))
    app.include_router(keys_router(keys, auth))
    app.include_router(messages_router(mailbox, auth))
    app.include_router(threads_router(threads, auth))
    app.include_router(links_router(links, auth))
    app.include_router(stream_router(accounts, mailbox, keys, hub))
    # Added last = outermost: the size limit runs before anything reads the body.
    app.add_middleware(BodyLimitMiddleware, max_body=config.max_body)
    app.add_middleware(AccessLogMiddleware)
    return app
