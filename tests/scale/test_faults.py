"""Faults: a node killed with SIGKILL in the middle of a 5,000-message burst (raw envelopes on the
stream send path, and secret messages between real devices behind a load balancer,
tests/scale/proxy.py), PostgreSQL connections dropped. A device killed between receiving and
acknowledging: tests/scale/test_device_crash.py."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from tests.conftest import PG_URL
from tests.integration.people import link_second, notices, register, texts
from tests.scale.conftest import Nodes
from tests.scale.proxy import Proxy
from tests.scale.raw import Collector, Dev, binary, person, send_body, wait_for, ws_url
from veil.client.device import Device
from veil.client.errors import ServerUnavailable
from veil.client.models import Message
from veil.client.stream import listen
from veil.protocol.wire import Results, Send, SendEnvelope, SendResult, decode_server_frame, encode_frame

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

PAIRS = 4
PER_PAIR = 1250  # 5,000 messages in the burst
WINDOW = 64  # Sends in flight on each sender's stream


def _body(pair: int, seq: int) -> bytes:
    return (b"%d:%d:" % (pair, seq)).ljust(200, b".")


@dataclass
class Sender:
    """Pipelines its pair's Sends on a stream to one node, WINDOW in flight; a body counts as
    acknowledged only on its SendResult(ok). When the node dies it sends everything not yet
    acknowledged again through the other node (same client_message_id: at most one copy stored)."""

    me: Dev
    to: Dev
    pair: int
    node: int  # index into the node URLs: where it starts
    acked: set[bytes] = field(default_factory=set)
    connects: list[int] = field(default_factory=list)  # the node of every stream it opened

    async def run(self, urls: list[str]) -> None:
        pending = set(range(PER_PAIR))
        for _ in range(20):
            self.connects.append(self.node)
            try:
                async with connect(ws_url(urls[self.node]), additional_headers=self.me.headers, open_timeout=5,
                                   max_size=8 * 1024 * 1024) as ws:
                    await self._pipeline(ws, pending)
            except (OSError, TimeoutError, WebSocketException):
                pass
            if not pending:
                return
            self.node = 1 - self.node
            await asyncio.sleep(0.05)
        raise AssertionError(f"sender {self.pair}: {len(pending)} sends never acknowledged")

    async def _pipeline(self, ws: ClientConnection, pending: set[int]) -> None:
        window = asyncio.Semaphore(WINDOW)

        async def writer() -> None:
            for seq in sorted(pending):
                await window.acquire()
                env = SendEnvelope(self.to.handle, self.to.device_id, 1, _body(self.pair, seq))
                await ws.send(encode_frame(Send(f"{self.pair}-{seq}", self.to.handle, [env])))

        w = asyncio.ensure_future(writer())
        try:
            async for raw in ws:
                frame = decode_server_frame(binary(raw))
                results = [frame] if isinstance(frame, SendResult) else (
                    frame.results if isinstance(frame, Results) else [])
                for result in results:
                    assert result.ok, result
                    seq = int(result.client_message_id.split("-")[1])
                    if seq in pending:
                        pending.discard(seq)
                        self.acked.add(_body(self.pair, seq))
                    window.release()
                if not pending:
                    return
        finally:
            w.cancel()
            await asyncio.gather(w, return_exceptions=True)


@pytest.mark.redis
@pytest.mark.timeout(60)
async def test_kill_9_a_node_mid_burst_every_acknowledged_message_arrives_once(
        nodes: Nodes, pg_db: str, redis_env: tuple[str, str]) -> None:
    """5,000 envelopes over the stream send path, senders on both nodes, every receiver streaming
    from node A; node A gets SIGKILL in the middle. Every acknowledged envelope reaches its device
    exactly once, and the receivers move to node B by themselves."""
    url, prefix = redis_env
    args = ("--redis", url, "--redis-prefix", prefix, "--recheck-interval", "1")
    a, b = nodes.start(pg_db, *args), nodes.start(pg_db, *args)
    async with httpx.AsyncClient(base_url=b.url, timeout=10) as hb:
        senders = [Sender(await person(hb, f"sender{i}"), await person(hb, f"receiver{i}"), i, i % 2)
                   for i in range(PAIRS)]
    stop = asyncio.Event()
    # Every receiver starts on node A (the one that dies) and moves to B by itself.
    collectors = [Collector(s.to, [a.url, b.url]) for s in senders]
    readers = [asyncio.create_task(c.run(stop)) for c in collectors]
    try:
        assert await wait_for(lambda: all(c.empty.is_set() for c in collectors), 15)
        urls = [a.url, b.url]
        on_a = [s for s in senders if s.node == 0]
        started = time.monotonic()
        burst = [asyncio.create_task(s.run(urls)) for s in senders]
        assert await wait_for(lambda: min(len(s.acked) for s in on_a) >= PER_PAIR * 0.3, 30, step=0.005)
        a.proc.kill()  # SIGKILL: no graceful shutdown, streams and sends cut mid-flight
        a.proc.wait()
        at_kill = [len(s.acked) for s in senders]
        assert all(len(s.acked) < PER_PAIR for s in on_a), at_kill  # node A died mid-burst
        await asyncio.wait_for(asyncio.gather(*burst), 40)
        elapsed = time.monotonic() - started
        assert sum(len(s.acked) for s in senders) == PAIRS * PER_PAIR  # all acknowledged in the end
        assert all(s.connects[-1] == 1 for s in on_a)  # the senders on A finished through B

        def complete() -> bool:
            return all(s.acked <= set(c.bodies.values()) for s, c in zip(senders, collectors, strict=True))

        assert await wait_for(complete, 30), [len(s.acked - set(c.bodies.values()))
                                              for s, c in zip(senders, collectors, strict=True)]
        await asyncio.sleep(1.5)  # anything stored twice would show up now
    finally:
        stop.set()
        await asyncio.gather(*readers)
    for i, c in enumerate(collectors):
        bodies = list(c.bodies.values())
        assert len(bodies) == len(set(bodies)) == PER_PAIR, f"receiver {i}: a message stored twice"
        assert c.connects >= 2  # it did reconnect, to node B
    print(f"burst of {PAIRS * PER_PAIR} in {elapsed:.1f}s; acknowledged per pair at the SIGKILL: {at_kill}")


DEVICE_PER_PAIR = 1250  # 5,000 secret messages through real devices (4 pairs)
TYPING = 3  # send_text calls in flight per sender (the device pipelines them on its stream)


@dataclass
class Chat:
    """A sender with a second (linked) device, and a receiver: real devices with real Olm sessions."""

    sender: Device
    sender2: Device
    receiver: Device
    pair: int
    acked: list[str] = field(default_factory=list)  # texts whose send_text returned
    failed: list[str] = field(default_factory=list)  # texts whose send_text raised ServerUnavailable

    @property
    def devices(self) -> list[Device]:
        return [self.sender, self.sender2, self.receiver]

    async def burst(self) -> None:
        await asyncio.gather(*(self._typist(lane) for lane in range(TYPING)))

    async def _typist(self, lane: int) -> None:
        for seq in range(lane, DEVICE_PER_PAIR, TYPING):
            for attempt in range(10):
                # A send that failed may still arrive (the outbox keeps it): a retry is a new text.
                text = f"{self.pair}:{seq}" + (f" again {attempt}" if attempt else "")
                try:
                    await self.sender.send_text(self.receiver.handle, text, secret=True)
                except ServerUnavailable:
                    self.failed.append(text)
                    await asyncio.sleep(0.2)
                    continue
                self.acked.append(text)
                break
            else:
                raise AssertionError(f"{self.pair}:{seq} never acknowledged")

    def views(self) -> dict[str, list[Message]]:
        """Each device's secret thread of this conversation, as its user sees it."""
        peer = self.receiver.handle
        return {"receiver": self.receiver.messages(self.sender.handle, secret=True),
                "sender's other device": self.sender2.messages(peer, secret=True),
                "sender": self.sender.messages(peer, secret=True)}


@pytest.mark.redis
@pytest.mark.timeout(60)
async def test_kill_9_a_node_mid_burst_devices_show_each_acknowledged_message_once(
        nodes: Nodes, pg_db: str, redis_env: tuple[str, str], tmp_path: Path) -> None:
    """Real devices behind load balancers (one address each, nodes A and B behind it), a burst of
    secret messages, node A SIGKILLed in the middle. Every message whose send_text returned shows
    exactly once in the receiver's thread, the sender's other device and the sender's own thread;
    the devices' streams reconnect through the same address to node B by themselves."""
    url, prefix = redis_env
    args = ("--redis", url, "--redis-prefix", prefix, "--recheck-interval", "1")
    a, b = nodes.start(pg_db, *args), nodes.start(pg_db, *args)
    async with Proxy([a.url, b.url]) as via_a, Proxy([b.url, a.url]) as via_b:
        # (sender side, receiver side): on one node, across nodes both ways.
        routes = [(via_a, via_a), (via_b, via_a), (via_a, via_b), (via_b, via_b)]
        chats: list[Chat] = []
        for i, (ps, pr) in enumerate(routes):
            sender = await register(ps.url, tmp_path, f"sender{i}")
            receiver = await register(pr.url, tmp_path, f"receiver{i}")
            chats.append(Chat(sender, await link_second(sender, tmp_path), receiver, i))
        devices = [d for c in chats for d in c.devices]
        behind_a = sum(d.server_url == via_a.url for d in devices)
        stop = asyncio.Event()
        listeners = [asyncio.create_task(listen(d, stop=stop)) for d in devices]
        try:
            assert await wait_for(lambda: all(d.stream_link is not None for d in devices), 15)
            assert via_a.streams == [behind_a, 0]  # every stream behind via_a is on node A
            on_a = [c for c in chats if c.sender.server_url == via_a.url]
            started = time.monotonic()
            burst = [asyncio.create_task(c.burst()) for c in chats]
            assert await wait_for(lambda: min(len(c.acked) for c in on_a) >= DEVICE_PER_PAIR * 0.3, 60,
                                  step=0.005)
            a.proc.kill()  # SIGKILL: streams, sends and acknowledgements cut mid-flight
            a.proc.wait()
            at_kill = [len(c.acked) for c in chats]
            assert all(len(c.acked) < DEVICE_PER_PAIR for c in on_a), at_kill  # node A died mid-burst
            await asyncio.wait_for(asyncio.gather(*burst), 60)
            elapsed = time.monotonic() - started

            def shown(m: list[Message]) -> set[str]:
                return {x.text for x in m if not x.is_notice}

            def complete() -> bool:
                return all(set(c.acked) <= shown(v) for c in chats for v in c.views().values())

            assert await wait_for(complete, 30, step=0.5), [
                {k: len(set(c.acked) - shown(v)) for k, v in c.views().items()} for c in chats]
            await asyncio.sleep(1.5)  # anything delivered twice would show up now
            # Every device behind via_a came back on node B through the same address.
            assert via_a.streams[1] >= behind_a, via_a.streams
            assert all(d.stream_link is not None for d in devices)
            final = [c.views() for c in chats]
        finally:
            stop.set()
            await asyncio.gather(*listeners)
            for d in devices:
                await d.close()
    for c, views in zip(chats, final, strict=True):
        # each message of the burst was acknowledged once (first try or a retry)
        assert Counter(t.split(" ")[0] for t in c.acked) == Counter(f"{c.pair}:{n}" for n in range(DEVICE_PER_PAIR))
        for who, view in views.items():
            lines = texts(view)
            counts = Counter(lines)
            assert all(counts[t] == 1 for t in c.acked), (who, {t: counts[t] for t in c.acked if counts[t] != 1})
            twice = {t: n for t, n in counts.items() if n > 1}
            assert not twice, f"pair {c.pair}, {who}: shown more than once: {twice}"
            assert set(lines) <= set(c.acked) | set(c.failed), (who, set(lines) - set(c.acked) - set(c.failed))
            ids = [m.id for m in view]
            assert len(ids) == len(set(ids))
            assert not notices(view), (who, [(m.notice, m.text) for m in notices(view)])
    print(f"{sum(len(c.acked) for c in chats)} secret messages in {elapsed:.1f}s; acknowledged per pair at "
          f"the SIGKILL: {at_kill}; send_text failures (retried as new texts): {[len(c.failed) for c in chats]}; "
          f"streams through via_a per node: {via_a.streams}")


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
