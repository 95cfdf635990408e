"""In-memory copies of each account's active device set and block list, for the stream send path.

A Send frame must be checked against the recipient's and the sender's active devices and the
recipient's block list; reading those from the database for every message costs more than the
whole insert. They change rarely (device-list upload, revocation, identity reset, block and
unblock), and every such change calls `Hub.invalidate(handle)`, which drops the entry here and,
through the Redis bus, on every other node.

Two guards keep a stale entry from surviving:
- an epoch counter: a fill that started before an invalidation is not stored (the read may have
  seen the old state);
- with several nodes, a TTL: an invalidation lost with a Redis outage expires by itself (and the
  bus clears everything when its subscription comes back).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from veil.server.storage.base import Store

__all__ = ["Directory", "Entry"]


@dataclass(frozen=True, slots=True)
class Entry:
    devices: frozenset[str]  # active device ids of the account
    blocked: frozenset[str]  # handles this account blocks
    at: float  # monotonic time of the fill


class Directory:
    def __init__(self, store: Store, ttl: float | None = None) -> None:
        self._store = store
        self._ttl = ttl
        self._entries: dict[str, Entry] = {}
        self._epoch = 0

    def invalidate(self, handle: str) -> None:
        self._entries.pop(handle, None)
        self._epoch += 1

    def clear(self) -> None:
        self._entries.clear()
        self._epoch += 1

    def cached(self, handle: str) -> Entry | None:
        """The entry if present and fresh, without touching the database."""
        e = self._entries.get(handle)
        if e is not None and self._ttl is not None and time.monotonic() - e.at > self._ttl:
            del self._entries[handle]
            return None
        return e

    async def get(self, handle: str) -> Entry | None:
        """The account's entry; None if there is no such account (not cached: it may appear)."""
        e = self.cached(handle)
        if e is not None:
            return e
        epoch = self._epoch
        if await self._store.get_account(handle) is None:
            return None
        devices = await self._store.devices_of([handle], active_only=True)
        blocked = await self._store.blocked_by(handle)
        e = Entry(frozenset(d.device_id for d in devices), frozenset(blocked), time.monotonic())
        if epoch == self._epoch:  # no invalidation raced the reads
            self._entries[handle] = e
        return e
