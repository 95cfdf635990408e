"""Crash safety of the stream send path: whatever a SendResult(ok) acknowledged is in the
database, even when the server process is killed with SIGKILL in the middle of a burst."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from tests.conftest import ServerProcess, make_pg_database, start_server
from tests.scale.raw import Collector, Dev, person, wait_for, ws_url
from veil.protocol.wire import Results, Send, SendEnvelope, SendResult, decode_server_frame, encode_frame

FAST_HASH = ("--argon2-time-cost", "1", "--argon2-memory-kib", "1024")
PAIRS = 4
PER_PAIR = 1500
KILL_AFTER = 1000  # acknowledged sends (over all pairs) before the SIGKILL

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, pg_database_factory: list[str]) -> str | None:
    return make_pg_database(pg_database_factory) if request.param == "postgres" else None


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    procs: list[ServerProcess] = []
    yield procs
    for p in procs:
        p.stop()


def _body(pair: int, seq: int) -> bytes:
    return (b"%d:%d:" % (pair, seq)).ljust(200, b".")


async def _burst(url: str, me: Dev, to: Dev, pair: int, acked: set[bytes]) -> None:
    """Every Send of the pair pipelined on one stream; a body counts as acknowledged only on its
    SendResult(ok). Ends when the server dies."""
    try:
        async with connect(ws_url(url), additional_headers=me.headers, max_size=8 * 1024 * 1024) as ws:
            for seq in range(PER_PAIR):
                await ws.send(encode_frame(Send(f"{pair}-{seq}", to.handle,
                                                [SendEnvelope(to.handle, to.device_id, 1, _body(pair, seq))])))
            async for raw in ws:
                assert isinstance(raw, bytes)
                f = decode_server_frame(raw)
                for r in f.results if isinstance(f, Results) else [f]:
                    if isinstance(r, SendResult) and r.ok:
                        seq = int(r.client_message_id.split("-")[1])
                        acked.add(_body(pair, seq))
    except (OSError, WebSocketException):
        pass  # killed mid-burst


async def test_everything_acknowledged_survives_sigkill(tmp_path: Path, db_url: str | None,
                                                        started: list[ServerProcess]) -> None:
    data = tmp_path / "node"
    first = start_server(data, db_url, *FAST_HASH)
    started.append(first)
    async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
        senders = [await person(http, f"sender{i}") for i in range(PAIRS)]
        receivers = [await person(http, f"receiver{i}") for i in range(PAIRS)]
    acked: list[set[bytes]] = [set() for _ in range(PAIRS)]
    burst = [asyncio.create_task(_burst(first.url, senders[i], receivers[i], i, acked[i])) for i in range(PAIRS)]
    assert await wait_for(lambda: sum(map(len, acked)) >= KILL_AFTER, 60)
    first.proc.kill()  # SIGKILL right in the burst: no shutdown, no final flush
    first.proc.wait()
    await asyncio.wait_for(asyncio.gather(*burst), 30)
    total = sum(map(len, acked))
    assert KILL_AFTER <= total < PAIRS * PER_PAIR, total  # killed mid-burst

    again = start_server(data, db_url, *FAST_HASH)
    started.append(again)
    stop = asyncio.Event()
    collectors = [Collector(r, [again.url]) for r in receivers]
    readers = [asyncio.create_task(c.run(stop)) for c in collectors]
    try:
        assert await wait_for(lambda: all(c.empty.is_set() for c in collectors), 60)
    finally:
        stop.set()
        await asyncio.gather(*readers)
    for i, c in enumerate(collectors):
        got = list(c.bodies.values())
        assert acked[i] <= set(got), len(acked[i] - set(got))
        assert len(got) == len(set(got))  # stored once each
