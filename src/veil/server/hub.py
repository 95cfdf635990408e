"""In-process registry of live delivery streams, keyed by device id.

`notify(device_ids)` only wakes connections; each connection then reads its own mailbox from
the database and pushes what it has not sent yet. The database stays the source of truth, so a
multi-node deployment can forward the same wake-ups over Redis pub/sub without carrying any
message content. Waking is a flag, never a queue: a slow reader holds back only itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

__all__ = ["Hub", "StreamSlot"]


class StreamSlot:
    """The server side of one connected stream: what it should do next, all bounded in size."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._event = asyncio.Event()
        self.mail = True  # the mailbox may hold something not yet pushed (true at connect)
        self.keys_low: int | None = None  # latest count to report; older reports are superseded
        self.close_code: int | None = None  # set when the device is revoked

    def wake(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()


class Hub:
    def __init__(self) -> None:
        self._slots: dict[str, set[StreamSlot]] = {}

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
        for device_id in set(device_ids):
            for slot in self._slots.get(device_id, ()):
                slot.mail = True
                slot.wake()

    def keys_low(self, device_id: str, count: int) -> None:
        for slot in self._slots.get(device_id, ()):
            slot.keys_low = count
            slot.wake()

    def disconnect(self, device_id: str, code: int) -> None:
        """Close every stream of a device (revoked): its token no longer works."""
        for slot in self._slots.get(device_id, ()):
            slot.close_code = code
            slot.wake()
