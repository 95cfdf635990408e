"""Two nodes on one PostgreSQL database: wake-ups cross nodes through Redis, and when Redis is
gone the streams' re-checks keep delivery going until the subscription comes back."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.scale.conftest import Nodes, OwnRedis
from tests.scale.raw import Collector, add_device, person, send, wait_for, ws_url
from tests.scale.raw import binary as _binary
from veil.protocol.wire import QueueEmpty, decode_server_frame
from veil.server.services.accounts import CLOSE_REVOKED

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(60)]


async def _latency(http_b: httpx.AsyncClient, sender: object, c: Collector, body: bytes) -> float:
    from tests.scale.raw import Dev

    assert isinstance(sender, Dev)
    before = len(c.bodies)
    start = time.monotonic()
    assert await send(http_b, sender, c.dev, body) == 200
    assert await wait_for(lambda: len(c.bodies) > before, 10, step=0.01), "not delivered"
    return time.monotonic() - start


async def test_device_on_node_a_receives_live_what_node_b_stores(nodes: Nodes, pg_db: str,
                                                                  redis_env: tuple[str, str]) -> None:
    url, prefix = redis_env
    # A long re-check interval: anything arriving fast came through Redis.
    a = nodes.start(pg_db, "--redis", url, "--redis-prefix", prefix, "--recheck-interval", "30")
    b = nodes.start(pg_db, "--redis", url, "--redis-prefix", prefix, "--recheck-interval", "30")
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as ha, httpx.AsyncClient(base_url=b.url,
                                                                                      timeout=10) as hb:
        alice, bob = await person(ha, "alice"), await person(hb, "bob")
        stop = asyncio.Event()
        c = Collector(bob, [a.url])
        task = asyncio.create_task(c.run(stop))
        assert await wait_for(c.empty.is_set, 10)
        await asyncio.sleep(0.3)  # both subscriptions live
        times = [await _latency(hb, alice, c, f"m{i}".encode()) for i in range(5)]
        assert max(times) < 1.0, times
        # Revoking a device through node B closes its stream on node A at once.
        second = await add_device(hb, "bob")
        async with connect(ws_url(a.url), additional_headers=second.headers, open_timeout=5) as ws:
            assert isinstance(decode_server_frame(_binary(await asyncio.wait_for(ws.recv(), 5))), QueueEmpty)
            r = await hb.delete(f"/v1/devices/{second.device_id}", headers=bob.headers)
            assert r.status_code == 200, r.text
            with pytest.raises(ConnectionClosed):
                while True:  # a KeysLow may come first (this device has no one-time keys)
                    await asyncio.wait_for(ws.recv(), 1.0)
            assert ws.close_code == CLOSE_REVOKED
        stop.set()
        await task


async def test_redis_loss_falls_back_to_rechecks_and_recovers(nodes: Nodes, pg_db: str,
                                                              own_redis: OwnRedis) -> None:
    args = ("--redis", own_redis.url, "--redis-prefix", "loss", "--recheck-interval", "1")
    a, b = nodes.start(pg_db, *args), nodes.start(pg_db, *args)
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as ha, httpx.AsyncClient(base_url=b.url,
                                                                                      timeout=10) as hb:
        alice, bob = await person(ha, "alice"), await person(hb, "bob")
        stop = asyncio.Event()
        c = Collector(bob, [a.url])
        task = asyncio.create_task(c.run(stop))
        assert await wait_for(c.empty.is_set, 10)
        await asyncio.sleep(0.3)
        live = [await _latency(hb, alice, c, b"live%d" % i) for i in range(3)]
        assert max(live) < 0.5, live
        own_redis.kill()
        # Without Redis: every message still arrives, within about one re-check interval.
        lost = [await _latency(hb, alice, c, b"lost%d" % i) for i in range(3)]
        assert max(lost) < 3.0, lost
        own_redis.start()
        for _ in range(75):
            if await _redis_up(ha) and await _redis_up(hb):
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the nodes did not resubscribe")
        back = [await _latency(hb, alice, c, b"back%d" % i) for i in range(3)]
        assert max(back) < 0.5, back
        stop.set()
        await task
    assert len(c.bodies) == 9
    assert b"redis subscription lost" in a.log_bytes()


async def _redis_up(http: httpx.AsyncClient) -> bool:
    return "veil_redis_up 1.0" in (await http.get("/metrics")).text
