"""Faults: a node killed with SIGKILL in the middle of a burst, PostgreSQL connections dropped."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from tests.conftest import PG_URL
from tests.scale.conftest import Nodes
from tests.scale.raw import Collector, Dev, person, send_body, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]

PAIRS = 4
PER_PAIR = 600  # 2,400 envelopes in the burst
LANES = 3  # concurrent requests per sender


def _body(pair: int, seq: int) -> bytes:
    return (b"%d:%d:" % (pair, seq)).ljust(200, b".")


async def _sender(clients: list[httpx.AsyncClient], first: int, me: Dev, to: Dev, pair: int,
                  acked: set[bytes]) -> None:
    await asyncio.gather(*(_lane(clients, first, me, to, pair, lane, acked) for lane in range(LANES)))


async def _lane(clients: list[httpx.AsyncClient], first: int, me: Dev, to: Dev, pair: int, lane: int,
                acked: set[bytes]) -> None:
    """Sends its share of PER_PAIR messages one after another; on a dead node retries the same
    message (same client_message_id, so at most one copy is stored) through the other."""
    node = first
    for seq in range(lane, PER_PAIR, LANES):
        body, cmid = _body(pair, seq), f"{pair}-{seq}"
        for _ in range(20):
            try:
                r = await clients[node].post("/v1/messages", headers=me.headers, json=send_body(to, cmid, body))
            except httpx.TransportError:
                node = 1 - node
                continue
            if r.status_code == 200:
                acked.add(body)
                break
            await asyncio.sleep(0.05)


@pytest.mark.redis
async def test_kill_9_a_node_mid_burst_every_acknowledged_message_arrives_once(
        nodes: Nodes, pg_db: str, redis_env: tuple[str, str]) -> None:
    url, prefix = redis_env
    args = ("--redis", url, "--redis-prefix", prefix, "--recheck-interval", "1")
    a, b = nodes.start(pg_db, *args), nodes.start(pg_db, *args)
    limits = httpx.Limits(max_connections=PAIRS * LANES * 2)
    async with httpx.AsyncClient(base_url=a.url, timeout=10, limits=limits) as ha, \
            httpx.AsyncClient(base_url=b.url, timeout=10, limits=limits) as hb:
        senders = [await person(hb, f"sender{i}") for i in range(PAIRS)]
        receivers = [await person(hb, f"receiver{i}") for i in range(PAIRS)]
        stop = asyncio.Event()
        # Every receiver starts on node A (the one that dies) and moves to B by itself.
        collectors = [Collector(r, [a.url, b.url]) for r in receivers]
        readers = [asyncio.create_task(c.run(stop)) for c in collectors]
        assert await wait_for(lambda: all(c.empty.is_set() for c in collectors), 15)
        acked: list[set[bytes]] = [set() for _ in range(PAIRS)]
        clients = [ha, hb]
        burst = [asyncio.create_task(_sender(clients, i % 2, senders[i], receivers[i], i, acked[i]))
                 for i in range(PAIRS)]
        assert await wait_for(lambda: sum(map(len, acked)) >= PAIRS * PER_PAIR * 0.4, 60)
        a.proc.kill()  # SIGKILL: no graceful shutdown, streams and requests cut mid-flight
        a.proc.wait()
        await asyncio.wait_for(asyncio.gather(*burst), 60)
        total = sum(map(len, acked))
        assert total == PAIRS * PER_PAIR  # every message was eventually acknowledged (retries via B)

        def complete() -> bool:
            return all(acked[i] <= set(c.bodies.values()) for i, c in enumerate(collectors))

        assert await wait_for(complete, 30), [len(acked[i] - set(c.bodies.values()))
                                              for i, c in enumerate(collectors)]
        await asyncio.sleep(1.5)  # anything stored twice would show up now
        stop.set()
        await asyncio.gather(*readers)
    for i, c in enumerate(collectors):
        bodies = list(c.bodies.values())
        assert len(bodies) == len(set(bodies)) == PER_PAIR, f"receiver {i}: a message stored twice"
        assert c.connects >= 2  # it did reconnect, to node B


async def _terminate_backends(db: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1 AND pid <> pg_backend_pid()", db)
        return len(rows)
    finally:
        await conn.close()


async def test_dropped_postgres_connections_answer_503_then_recover(nodes: Nodes, pg_db: str) -> None:
    node = nodes.start(pg_db)
    db_name = pg_db.rsplit("/", 1)[1]
    statuses: dict[int, int] = {}
    acked: set[bytes] = set()
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        alice, bob = await person(http, "alice"), await person(http, "bob")
        running = True

        async def hammer() -> None:
            while running:
                body = secrets.token_bytes(100)
                r = await http.post("/v1/messages", headers=alice.headers,
                                    json=send_body(bob, secrets.token_hex(8), body))
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    acked.add(body)
                else:
                    assert r.json()["error"]["code"] == "unavailable", r.text

        tasks = [asyncio.create_task(hammer()) for _ in range(4)]
        killed = 0
        for _ in range(6):
            await asyncio.sleep(0.4)
            killed += await _terminate_backends(db_name)
        await asyncio.sleep(0.5)
        running = False
        await asyncio.gather(*tasks)
        assert killed > 0
        assert set(statuses) <= {200, 503}, statuses
        # After reconnection every request succeeds again.
        for _ in range(5):
            r = await http.post("/v1/messages", headers=alice.headers,
                                json=send_body(bob, secrets.token_hex(8), b"after"))
            assert r.status_code == 200, r.text
        stop = asyncio.Event()
        c = Collector(bob, [node.url])
        reader = asyncio.create_task(c.run(stop))
        assert await wait_for(lambda: acked <= set(c.bodies.values()), 15), "an acknowledged message was lost"
        stop.set()
        await reader
    print(f"statuses during the drops: {statuses}")
