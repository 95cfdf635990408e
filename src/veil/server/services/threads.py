"""Regular threads: readable on the server, fanned out to every device of both people."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from veil.protocol.payload import RegularMessage, encode_regular
from veil.protocol.wire import KIND_REGULAR
from veil.server.clock import Clock
from veil.server.errors import NotFound
from veil.server.hub import Hub
from veil.server.storage.base import DeviceRow, NewEnvelope, RegularRow, Store

__all__ = ["ThreadService", "ThreadSummary", "thread_key"]

log = logging.getLogger("veil.server.threads")


def thread_key(a: str, b: str) -> str:
    """The same key whichever side asks: the two handles sorted, joined by '|'."""
    x, y = sorted((a, b))
    return f"{x}|{y}"


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    peer: str
    last_ts: int


class ThreadService:
    def __init__(self, store: Store, clock: Clock, hub: Hub) -> None:
        self._store = store
        self._clock = clock
        self._hub = hub

    async def _require_user(self, handle: str) -> None:
        if await self._store.get_account(handle) is None:
            raise NotFound(f"no user {handle!r}", "unknown_user")

    async def send(self, sender: DeviceRow, peer: str, client_message_id: str, text: str) -> RegularRow:
        await self._require_user(peer)
        now = self._clock.now_ms()
        message_id = secrets.token_hex(12)
        event = RegularMessage(message_id=message_id, sender=sender.handle, sender_device=sender.device_id,
                               to=peer, text=text, ts=now, client_message_id=client_message_id)
        body = encode_regular(event)
        # Every device, pending ones too: regular threads are readable by any logged-in device.
        targets = [d.device_id for d in await self._store.devices_of(sorted({sender.handle, peer}))
                   if d.device_id != sender.device_id]
        envelopes = [NewEnvelope(device_id=t, kind=KIND_REGULAR, sender=sender.handle,
                                 sender_device=sender.device_id, server_ts=now, olm_type=0, body=body,
                                 client_message_id=client_message_id) for t in targets]
        row = RegularRow(id=0, message_id=message_id, thread_key=thread_key(sender.handle, peer),
                         sender=sender.handle, sender_device=sender.device_id, recipient=peer, text=text,
                         ts=now, client_message_id=client_message_id)
        stored, created = await self._store.store_regular(row, envelopes)
        if created:
            self._hub.notify(targets)
            log.info("regular message %s/%s -> %s", sender.handle, sender.device_id, peer)
        return stored

    async def threads(self, handle: str) -> list[ThreadSummary]:
        out = []
        for t in await self._store.threads_of(handle):
            a, _, b = t.thread_key.partition("|")
            out.append(ThreadSummary(peer=b if a == handle else a, last_ts=t.last_ts))
        return out

    async def history(self, handle: str, peer: str, before: str | None,
                      limit: int) -> tuple[list[RegularRow], bool]:
        """A page of up to `limit` messages older than `before`, ascending; and whether older exist."""
        await self._require_user(peer)
        key = thread_key(handle, peer)
        before_id = None
        if before:
            anchor = await self._store.regular_by_message_id(before)
            if anchor is None or anchor.thread_key != key:
                raise NotFound(f"no message {before!r} in this thread", "unknown_message")
            before_id = anchor.id
        rows = await self._store.regular_history(key, before_id=before_id, limit=limit + 1)
        more = len(rows) > limit
        return list(reversed(rows[:limit])), more
