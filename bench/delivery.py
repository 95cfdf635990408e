"""Benchmarks 1 and 2: durable delivery throughput and latency over WebSocket streams.

K sender and K receiver devices; senders send 200-byte pre-encrypted (opaque) envelopes, the
receivers hold streams and acknowledge; a message counts when its receiver got it (the server
pushes only committed envelopes) and acknowledged it. Targets: SQLite one node, PostgreSQL one
node, PostgreSQL two nodes + Redis.

`--path stream` (default): each sender holds a stream and pipelines Send frames (up to WINDOW
unanswered), after one uncounted warm-up message per sender; `--path rest`: each sender POSTs
/v1/messages (4 requests in flight per sender).

    python -m bench.delivery [--seconds 3] [--k 8] [--targets sqlite,pg,pg2] [--rates 100,1000,5000]
                             [--path stream|rest] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import struct
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.common import (
    REDIS,
    Dev,
    Node,
    drop_pg_database,
    pct,
    person,
    pg_database,
    raise_fd_limit,
    record,
    send_json,
    start_node,
    ws_url,
)
from veil.protocol.wire import (
    Ack,
    Deliver,
    Results,
    Send,
    SendEnvelope,
    SendResult,
    Sends,
    decode_server_frame,
    encode_frame,
)
from veil.server.run import tune_gc

BODY = 200
MAX_INFLIGHT = 256
WINDOW = 256  # unanswered Sends per sender stream
BATCH = 64  # Sends per frame at most (throughput mode: as many as the window allows)


@dataclass
class Receiver:
    latencies: list[float] = field(default_factory=list)
    count: int = 0

    async def run(self, ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                if not isinstance(raw, bytes):
                    continue
                frame = decode_server_frame(raw)
                if isinstance(frame, Deliver):
                    await ws.send(encode_frame(Ack(ids=[e.id for e in frame.envelopes])))
                    now = time.perf_counter_ns()
                    for e in frame.envelopes:
                        (sent,) = struct.unpack_from("<q", e.body)
                        if sent:
                            self.latencies.append((now - sent) / 1e6)
                        self.count += 1


class StreamSender:
    """One sender device's stream: Sends frames out (what was due in the same loop tick, as a
    client coalesces the sends made together), SendResult/Results frames in."""

    def __init__(self, ws: ClientConnection, me: Dev, to: Dev) -> None:
        self.ws, self.me, self.to = ws, me, to
        self.inflight = 0  # Send frames not answered yet (at most WINDOW)
        self.room = asyncio.Event()
        self.room.set()
        self.ok = self.errors = 0
        self.seq = 0

    async def send(self, stamps: list[int]) -> None:
        """One frame with a message per stamp (0: no latency sample)."""
        sends = []
        for stamp in stamps:
            self.seq += 1
            body = struct.pack("<q", stamp).ljust(BODY, b"\x00")
            sends.append(Send(f"{self.me.device_id}-{self.seq}", self.to.handle,
                              [SendEnvelope(self.to.handle, self.to.device_id, 1, body)]))
        self.inflight += len(sends)
        if self.inflight >= WINDOW:
            self.room.clear()
        await self.ws.send(encode_frame(sends[0] if len(sends) == 1 else Sends(sends)))

    async def answers(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                if not isinstance(raw, bytes):
                    continue
                f = decode_server_frame(raw)
                results = f.results if isinstance(f, Results) else [f] if isinstance(f, SendResult) else []
                for r in results:
                    if r.ok:
                        self.ok += 1
                    else:
                        self.errors += 1
                self.inflight -= len(results)
                if self.inflight < WINDOW:
                    self.room.set()

    @property
    def free(self) -> int:
        return max(WINDOW - self.inflight, 0)


async def _drive_stream(send_url: str, senders: list[Dev], receivers: list[Dev], recs: list[Receiver], mode: str,
                        seconds: float, rate: int) -> tuple[int, int, float]:
    socks = [await connect(ws_url(send_url), additional_headers=d.headers, max_size=8 * 1024 * 1024)
             for d in senders]
    lanes = [StreamSender(ws, me, to) for ws, me, to in zip(socks, senders, receivers, strict=True)]
    readers = [asyncio.create_task(lane.answers()) for lane in lanes]
    # Warm-up, not counted: one message per sender, so the server has cached these new accounts'
    # device lists (a cold cache costs a few database reads per account) and the figures below
    # describe the steady state.
    for lane in lanes:
        await lane.send([0])
    deadline = time.perf_counter() + 10
    while (any(lane.inflight for lane in lanes)  # noqa: ASYNC110
           or sum(r.count for r in recs) < len(lanes)) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    for lane in lanes:
        lane.ok = lane.errors = 0
    for r in recs:
        r.count = 0
        r.latencies.clear()
    start = time.perf_counter()
    stop_at = start + seconds
    if mode == "throughput":
        async def loop(lane: StreamSender) -> None:
            while time.perf_counter() < stop_at:
                await lane.room.wait()
                await lane.send([0] * min(lane.free, BATCH))
        await asyncio.gather(*(loop(lane) for lane in lanes))
    else:
        n = 0
        while (now := time.perf_counter()) < stop_at:
            due = int((now - start) * rate)
            if n < due:
                stamp = time.perf_counter_ns()
                per_lane = [0] * len(lanes)
                for i in range(n, due):
                    per_lane[i % len(lanes)] += 1
                for lane, want in zip(lanes, per_lane, strict=True):
                    # When the server is saturated the offered load is capped by the window.
                    if want := min(want, lane.free):
                        await lane.send([stamp] * want)
                n = due
            await asyncio.sleep(0.0005)
    elapsed = time.perf_counter() - start
    deadline = time.perf_counter() + 10
    while any(lane.inflight for lane in lanes) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    for ws in socks:
        await ws.close()
    for t in readers:
        t.cancel()
    return sum(lane.ok for lane in lanes), sum(lane.errors for lane in lanes), elapsed


async def _workload(urls: list[str], k: int, mode: str, seconds: float, rate: int = 0,
                    path: str = "stream") -> dict[str, float]:
    """mode 'throughput': closed loop (each sender 4 requests, or WINDOW Send frames, in flight);
    'latency': open loop at `rate`/s."""
    send_url, recv_url = urls[0], urls[-1]
    async with httpx.AsyncClient(base_url=send_url, timeout=30, limits=httpx.Limits(max_connections=4 * k)) as hs, \
            httpx.AsyncClient(base_url=recv_url, timeout=30) as hr:
        tag = str(time.monotonic_ns())[-6:]
        senders = [await person(hs, f"s{tag}{i}") for i in range(k)]
        receivers = [await person(hr, f"r{tag}{i}") for i in range(k)]
        recs = [Receiver() for _ in range(k)]
        socks = [await connect(ws_url(recv_url), additional_headers=r.headers, max_size=8 * 1024 * 1024)
                 for r in receivers]
        tasks = [asyncio.create_task(rec.run(ws)) for rec, ws in zip(recs, socks, strict=True)]
        await asyncio.sleep(0.3)
        sent = errors = 0
        stop_at = time.perf_counter() + seconds
        start = time.perf_counter()
        if path == "stream":
            sent, errors, elapsed = await _drive_stream(send_url, senders, receivers, recs, mode, seconds, rate)
            return await _finish(time.perf_counter() - elapsed, elapsed, sent, errors, recs, socks, tasks)

        async def post(i: int) -> None:
            nonlocal sent, errors
            body = struct.pack("<q", time.perf_counter_ns() if mode == "latency" else 0).ljust(BODY, b"\x00")
            r = await hs.post("/v1/messages", headers=senders[i].headers, json=send_json(receivers[i], body))
            if r.status_code == 200:
                sent += 1
            else:
                errors += 1

        start = time.perf_counter()
        if mode == "throughput":
            async def lane(i: int) -> None:
                while time.perf_counter() < stop_at:
                    await post(i)
            await asyncio.gather(*(lane(i % k) for i in range(4 * k)))
        else:
            inflight: set[asyncio.Task[None]] = set()
            n = 0
            while (now := time.perf_counter()) < stop_at:
                due = int((now - start) * rate)
                while n < due:
                    if len(inflight) >= MAX_INFLIGHT:  # the server is saturated: offered load is capped
                        n = due
                        break
                    t = asyncio.create_task(post(n % k))
                    inflight.add(t)
                    t.add_done_callback(inflight.discard)
                    n += 1
                await asyncio.sleep(0.0005)
            await asyncio.gather(*inflight)
        elapsed = time.perf_counter() - start
        return await _finish(start, elapsed, sent, errors, recs, socks, tasks)


async def _finish(start: float, elapsed: float, sent: int, errors: int, recs: list[Receiver],
                  socks: list[ClientConnection], tasks: list[asyncio.Task[None]]) -> dict[str, float]:
    deadline = time.perf_counter() + 10
    while sum(r.count for r in recs) < sent and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    done = time.perf_counter() - start
    for ws in socks:
        await ws.close()
    for t in tasks:
        t.cancel()
    got = sum(r.count for r in recs)
    lat = [x for r in recs for x in r.latencies]
    return {"sent": sent, "errors": errors, "delivered": got, "rate": got / done, "offered": sent / elapsed,
            "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99)}


async def _nodes(target: str, tmp: Path) -> tuple[list[Node], str | None]:
    if target == "sqlite":
        return [start_node(tmp / "sqlite")], None
    db = await pg_database()
    if target == "pg":
        return [start_node(tmp / "pg", "--db", db)], db
    prefix = f"bench{time.monotonic_ns()}"
    args = ("--db", db, "--redis", REDIS, "--redis-prefix", prefix)
    return [start_node(tmp / "pg2a", *args), start_node(tmp / "pg2b", *args)], db


def _list(values: Iterable[float], digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


async def run(targets: list[str], seconds: float, k: int, rates: list[int],
              path: str = "stream", runs: int = 3) -> dict[str, dict[str, float]]:
    """Each figure is the median of `runs` runs (the machine is noisy); the single runs are listed."""
    raise_fd_limit()
    # The load generator allocates per frame like the server does: the same GC settings keep its
    # collector pauses out of the latency figures it measures.
    tune_gc()
    out: dict[str, dict[str, float]] = {}
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        for target in targets:
            nodes, db = await _nodes(target, Path(d))
            try:
                urls = [n.url for n in nodes]
                ts = [await _workload(urls, k, "throughput", seconds, path=path) for _ in range(runs)]
                t = out[f"{target}/throughput"] = _median(ts)
                lines.append(f"delivery throughput [{target}, {path}, K={k}, {seconds:.0f} s]: median {t['rate']:.0f} "
                             f"msg/s durably delivered over {runs} runs "
                             f"({_list((x['rate'] for x in ts), 0)}; "
                             f"{sum(x['delivered'] for x in ts):.0f} of {sum(x['sent'] for x in ts):.0f} sent, "
                             f"{sum(x['errors'] for x in ts):.0f} errors)")
                for rate in rates:
                    lats = [await _workload(urls, k, "latency", seconds, rate, path=path) for _ in range(runs)]
                    lat = out[f"{target}/latency{rate}"] = _median(lats)
                    lines.append(f"latency [{target}, {path}] offered {rate}/s (achieved {lat['offered']:.0f}/s), "
                                 f"medians of {runs} runs: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
                                 f"p99 {lat['p99']:.1f} ms (p99s {_list((x['p99'] for x in lats), 1)})")
            finally:
                for n in nodes:
                    n.stop()
                if db:
                    await drop_pg_database(db)
    record("Delivery (benchmarks 1 and 2)", lines)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--targets", default="sqlite,pg,pg2")
    p.add_argument("--rates", default="100,1000,5000")
    p.add_argument("--path", choices=("stream", "rest"), default="stream")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported")
    a = p.parse_args()
    asyncio.run(run(a.targets.split(","), a.seconds, a.k, [int(x) for x in a.rates.split(",")], a.path, a.runs))


if __name__ == "__main__":
    main()
