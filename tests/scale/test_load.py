"""Load: a reader that stops reading stalls nobody else; 1,000 devices connecting at once are served."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.scale.conftest import Nodes
from tests.scale.raw import Collector, add_device, person, send, wait_for, ws_url
from tests.scale.raw import binary as _binary
from veil.protocol.wire import QueueEmpty, decode_server_frame

pytestmark = [pytest.mark.timeout(90)]


async def test_slow_reader_does_not_stall_the_others(nodes: Nodes, pg_db: str) -> None:
    node = nodes.start(pg_db, "--max-body", str(4 * 1024 * 1024))
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        alice, slow, fast = await person(http, "alice"), await person(http, "slow"), await person(http, "fast")
        # The slow device connects and never reads: its socket buffers fill, then the server's.
        async with connect(ws_url(node.url), additional_headers=slow.headers, max_queue=1,
                           max_size=8 * 1024 * 1024):
            stop = asyncio.Event()
            c = Collector(fast, [node.url])
            reader = asyncio.create_task(c.run(stop))
            assert await wait_for(c.empty.is_set, 10)
            big = b"x" * 60_000
            for _ in range(100):  # about 6 MB waiting for the slow reader
                assert await send(http, alice, slow, big) == 200
            worst = 0.0
            for i in range(10):
                before, start = len(c.bodies), time.monotonic()
                assert await send(http, alice, fast, b"hello %d" % i) == 200
                assert await wait_for(lambda b=before: len(c.bodies) > b, 5, step=0.005)
                worst = max(worst, time.monotonic() - start)
            assert worst < 0.5, worst
            stop.set()
            await reader


async def test_a_thousand_devices_connecting_at_once_are_all_served(nodes: Nodes, pg_db: str) -> None:
    node = nodes.start(pg_db)
    n = 1000
    async with httpx.AsyncClient(base_url=node.url, timeout=30,
                                 limits=httpx.Limits(max_connections=16)) as http:
        owner = await person(http, "crowd")
        devices = [owner]
        sem = asyncio.Semaphore(16)

        async def one() -> None:
            async with sem:
                devices.append(await add_device(http, "crowd"))

        await asyncio.gather(*(one() for _ in range(n - 1)))
    assert len(devices) == n
    served = 0

    async def connect_one(headers: dict[str, str], go: asyncio.Event, hold: asyncio.Event) -> None:
        nonlocal served
        await go.wait()
        async with connect(ws_url(node.url), additional_headers=headers, open_timeout=60) as ws:
            frame = decode_server_frame(_binary(await asyncio.wait_for(ws.recv(), 60)))
            assert isinstance(frame, QueueEmpty)
            served += 1
            await hold.wait()  # all of them open at the same time

    go, hold = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(connect_one(d.headers, go, hold)) for d in devices]
    start = time.monotonic()
    go.set()
    assert await wait_for(lambda: served == n or any(t.done() for t in tasks), 60, step=0.1)
    elapsed = time.monotonic() - start
    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(node.url + "/metrics")).text
    hold.set()
    await asyncio.gather(*tasks)
    assert served == n
    assert f"veil_open_connections {float(n)}" in metrics
    print(f"{n} streams opened and served in {elapsed:.1f} s")
