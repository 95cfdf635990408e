"""In-process registry of live delivery streams, keyed by device id.

`notify(device_ids)` only wakes connections; each connection then reads its own mailbox from
the database and pushes what it has not sent yet. The database stays the source of truth, so a
multi-node deployment can forward the same wake-ups over Redis pub/sub without carrying any
message content. Waking is a flag, never a queue: a slow reader holds back only itself.

The stream send path adds a fast lane: envelopes committed by this node's group writer are
handed to the local slots of their devices (`push`), so the stream sends them without reading
the database again. That outbox is bounded; when it is full the slot falls back to the flag
(`mail`) and the database re-read, which stays the truth.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from typing import Protocol

from veil.protocol.wire import Envelope, SendResult

__all__ = ["OUTBOX_MAX", "Hub", "Publisher", "StreamSlot"]

OUTBOX_MAX = 1000  # envelopes waiting in one connection's outbox; beyond that, re-read the DB


class Publisher(Protocol):
    """Forwards this node's wake-ups to the other nodes (`bus.RedisBus`)."""

    def publish_wake(self, device_ids: list[str]) -> None: ...
    def publish_keys_low(self, device_id: str, count: int) -> None: ...
    def publish_disconnect(self, device_id: str, code: int) -> None: ...
    def publish_invalidate(self, handle: str) -> None: ...


class StreamSlot:
    """The server side of one connected stream: what it should do next, all bounded in size.

    Kept small (slots, a future only while waiting, no Event): 10,000 idle streams hold 10,000
    of these.
    """

    __slots__ = ("_waiter", "_woken", "close_code", "device_id", "keys_low", "mail", "outbox", "results")

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self.mail = True  # the mailbox may hold something not yet pushed (true at connect)
        self.keys_low: int | None = None  # latest count to report; older reports are superseded
        self.close_code: int | None = None  # set when the device is revoked
        self.outbox: list[Envelope] = []  # committed envelopes to push, oldest first
        self.results: list[SendResult] = []  # answers to this connection's Send frames

    def push(self, envelope: Envelope) -> None:
        if self.mail or len(self.outbox) >= OUTBOX_MAX:
            # A re-read is due anyway (or the reader is behind): it will find this one too.
            self.outbox.clear()
            self.mail = True
        else:
            self.outbox.append(envelope)
        self.wake()

    def wake(self) -> None:
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, recheck: float | None = None) -> None:
        """Until woken; with `recheck` (seconds, jittered ±25 %), at the latest then, with `mail` set."""
        if not self._woken:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                if recheck is None:
                    await waiter
                else:
                    try:
                        await asyncio.wait_for(waiter, recheck * (0.75 + random.random() / 2))
                    except TimeoutError:
                        self.mail = True  # a wake-up from another node may have been lost
            finally:
                self._waiter = None
        self._woken = False


class Hub:
    """Local streams by device id. With a `publisher`, every wake-up also goes to the other nodes,
    which apply it through the `apply_*` methods (the bus calls them)."""

    def __init__(self, publisher: Publisher | None = None) -> None:
        self._slots: dict[str, set[StreamSlot]] = {}
        self.publisher = publisher
        self._on_invalidate: list[Callable[[str | None], None]] = []

    @property
    def open_streams(self) -> int:
        return sum(len(s) for s in self._slots.values())

    def register(self, device_id: str) -> StreamSlot:
        slot = StreamSlot(device_id)
        self._slots.setdefault(device_id, set()).add(slot)
        return slot

    def unregister(self, slot: StreamSlot) -> None:
        slots = self._slots.get(slot.device_id)
        if slots is not None:
            slots.discard(slot)
            if not slots:
                del self._slots[slot.device_id]

    def connected(self, device_id: str) -> int:
        return len(self._slots.get(device_id, ()))

    def notify(self, device_ids: Iterable[str]) -> None:
        """New envelopes were committed for these devices."""
        ids = list(set(device_ids))
        self.apply_wake(ids)
        if self.publisher is not None:
            self.publisher.publish_wake(ids)

    def push(self, device_id: str, envelopes: list[Envelope]) -> bool:
        """Committed envelopes for a device: into its local outboxes. False if none is connected
        here (other nodes are woken through `notify`)."""
        slots = self._slots.get(device_id)
        if not slots:
            return False
        for slot in slots:
            for e in envelopes:
                slot.push(e)
        return True

    def on_invalidate(self, callback: Callable[[str | None], None]) -> None:
        """`callback(handle)` when an account's devices or blocks changed; None: all may have."""
        self._on_invalidate.append(callback)

    def invalidate(self, handle: str) -> None:
        """The account's active devices or its block list changed (here or, via the bus, anywhere)."""
        self.apply_invalidate(handle)
        if self.publisher is not None:
            self.publisher.publish_invalidate(handle)

    def keys_low(self, device_id: str, count: int) -> None:
        self.apply_keys_low(device_id, count)
        if self.publisher is not None:
            self.publisher.publish_keys_low(device_id, count)

    def disconnect(self, device_id: str, code: int) -> None:
        """Close every stream of a device (revoked): its token no longer works."""
        self.apply_disconnect(device_id, code)
        if self.publisher is not None:
            self.publisher.publish_disconnect(device_id, code)

    # -- local effects (also what the other nodes' wake-ups do here) ----------------------------
    def apply_wake(self, device_ids: list[str]) -> None:
        for device_id in device_ids:
            for slot in self._slots.get(device_id, ()):
                slot.mail = True
                slot.wake()

    def apply_keys_low(self, device_id: str, count: int) -> None:
        for slot in self._slots.get(device_id, ()):
            slot.keys_low = count
            slot.wake()

    def apply_disconnect(self, device_id: str, code: int) -> None:
        for slot in self._slots.get(device_id, ()):
            slot.close_code = code
            slot.wake()

    def apply_invalidate(self, handle: str | None) -> None:
        for cb in self._on_invalidate:
            cb(handle)

    def wake_all(self) -> None:
        """Every local stream re-reads its mailbox (after a gap in the cross-node wake-ups);
        cached device and block lists are dropped, since invalidations may have been lost too."""
        self.apply_invalidate(None)
        for slots in self._slots.values():
            for slot in slots:
                slot.mail = True
                slot.wake()
