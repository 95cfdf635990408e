"""The cached device and block lists of the stream send path: what drops an entry, here and on
other nodes (the Redis bus message `i|handle`), and why a fill racing an invalidation is not kept."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from veil.server.bus import RedisBus
from veil.server.hub import Hub
from veil.server.services.directory import Directory
from veil.server.storage.base import AccountRow, DeviceRow


class FakeStore:
    """Just what Directory reads, with a gate to hold a fill in the middle."""

    def __init__(self) -> None:
        self.devices = {"bob": ["D1"]}
        self.blocks: dict[str, list[str]] = {"bob": []}
        self.gate = asyncio.Event()
        self.gate.set()
        self.reads = 0

    async def get_account(self, handle: str) -> AccountRow | None:
        if handle not in self.devices:
            return None
        return AccountRow(handle, handle, "", "", 0)

    async def devices_of(self, handles: Sequence[str], *, active_only: bool = False) -> list[DeviceRow]:
        self.reads += 1
        await self.gate.wait()
        return [DeviceRow(d, h, "d", "", "", "", "active", 0, 0) for h in handles for d in self.devices[h]]

    async def blocked_by(self, blocker: str) -> list[str]:
        return list(self.blocks[blocker])


async def test_entries_are_cached_until_invalidated() -> None:
    store = FakeStore()
    d = Directory(store)  # type: ignore[arg-type]
    hub = Hub()
    hub.on_invalidate(lambda h: d.clear() if h is None else d.invalidate(h))
    e = await d.get("bob")
    assert e is not None and e.devices == {"D1"} and store.reads == 1
    store.devices["bob"] = ["D1", "D2"]
    assert (await d.get("bob")) == e and store.reads == 1  # served from memory
    hub.invalidate("bob")
    e = await d.get("bob")
    assert e is not None and e.devices == {"D1", "D2"}
    store.blocks["bob"] = ["alice"]
    hub.wake_all()  # after a bus reconnect everything is dropped
    e = await d.get("bob")
    assert e is not None and e.blocked == {"alice"}
    assert await d.get("nobody") is None and d.cached("nobody") is None


async def test_a_fill_that_raced_an_invalidation_is_not_kept() -> None:
    store = FakeStore()
    d = Directory(store)  # type: ignore[arg-type]
    store.gate.clear()
    fill = asyncio.create_task(d.get("bob"))
    await asyncio.sleep(0.01)  # the fill has read the account and waits in devices_of
    d.invalidate("bob")
    store.gate.set()
    assert (await fill) is not None
    assert d.cached("bob") is None  # it may hold the old state: not cached


async def test_ttl_expires_entries() -> None:
    d = Directory(FakeStore(), ttl=0.01)  # type: ignore[arg-type]
    assert await d.get("bob") is not None and d.cached("bob") is not None
    await asyncio.sleep(0.03)
    assert d.cached("bob") is None


async def test_bus_carries_invalidations_between_nodes() -> None:
    seen: list[str | None] = []
    hub = Hub()
    hub.on_invalidate(seen.append)
    bus = RedisBus("redis://127.0.0.1:1/0", "p")
    bus._target = hub
    bus.publish_invalidate("bob")
    assert list(bus._pending) == [f"{bus.node}|i|bob"]
    bus._apply(f"{bus.node}|i|bob")  # our own message: ignored
    bus._apply(b"othernode|i|carol")
    assert seen == ["carol"]
