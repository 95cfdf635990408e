"""Blocking: A blocks B → B's secret envelopes to A's devices are dropped, B's regular messages
to A are kept from A, and B cannot start a regular thread with A. The rules are applied by
the mailbox and thread services; this one keeps the list."""

from __future__ import annotations

import logging

from veil.server.clock import Clock
from veil.server.errors import BadRequest, NotFound
from veil.server.hub import Hub
from veil.server.storage.base import DeviceRow, Store

__all__ = ["BlockService"]

log = logging.getLogger("veil.server.blocks")


class BlockService:
    def __init__(self, store: Store, clock: Clock, hub: Hub | None = None) -> None:
        self._store = store
        self._clock = clock
        self._hub = hub

    def _changed(self, handle: str) -> None:
        if self._hub is not None:  # cached block lists (stream send path) must be dropped
            self._hub.invalidate(handle)

    async def block(self, me: DeviceRow, handle: str) -> list[str]:
        if handle == me.handle:
            raise BadRequest("you cannot block yourself", "cannot_block_self")
        if await self._store.get_account(handle) is None:
            raise NotFound(f"no user {handle!r}", "unknown_user")
        await self._store.add_block(me.handle, handle, self._clock.now_ms())
        self._changed(me.handle)
        log.info("%s blocked %s", me.handle, handle)
        return await self._store.blocked_by(me.handle)

    async def unblock(self, me: DeviceRow, handle: str) -> list[str]:
        if await self._store.remove_block(me.handle, handle):
            self._changed(me.handle)
            log.info("%s unblocked %s", me.handle, handle)
        return await self._store.blocked_by(me.handle)

    async def blocked(self, me: DeviceRow) -> list[str]:
        return await self._store.blocked_by(me.handle)
