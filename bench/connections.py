"""Benchmark 3: idle authenticated streams and server RSS per connection.

    python bench/connections.py [--counts 1000] (e.g. --counts 1000,5000,10000)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.common import add_device, drop_pg_database, person, pg_database, raise_fd_limit, record, start_node, ws_url


async def run(counts: list[int]) -> None:
    raise_fd_limit()
    lines: list[str] = []
    db = await pg_database()
    with tempfile.TemporaryDirectory() as d:
        node = start_node(Path(d) / "conn", "--db", db)
        try:
            async with httpx.AsyncClient(base_url=node.url, timeout=60,
                                         limits=httpx.Limits(max_connections=16)) as http:
                owner = await person(http, "crowd")
                devices = [owner]
                sem = asyncio.Semaphore(16)

                async def one() -> None:
                    async with sem:
                        devices.append((await add_device(http, "crowd"))[0])

                await asyncio.gather(*(one() for _ in range(max(counts) - 1)))
            await asyncio.sleep(0.5)
            base = node.rss_kib()
            socks: list[ClientConnection] = []
            for n in sorted(counts):
                start = time.perf_counter()
                sem2 = asyncio.Semaphore(200)

                async def open_one(i: int) -> ClientConnection:
                    async with sem2:  # noqa: B023 (awaited within this iteration)
                        ws = await connect(ws_url(node.url), additional_headers=devices[i].headers,
                                           open_timeout=120)
                        await ws.recv()  # QueueEmpty: authenticated and served
                        return ws

                socks += await asyncio.gather(*(open_one(i) for i in range(len(socks), n)))
                took = time.perf_counter() - start
                await asyncio.sleep(1.0)
                rss = node.rss_kib()
                lines.append(f"{n} idle streams: server RSS {rss / 1024:.0f} MiB (baseline {base / 1024:.0f} MiB, "
                             f"{(rss - base) / max(1, n):.1f} KiB per connection); opened in {took:.1f} s")
            for ws in socks:
                with contextlib.suppress(Exception):
                    await ws.close()
        finally:
            node.stop()
            await drop_pg_database(db)
    record("Idle connections (benchmark 3)", lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--counts", default="1000")
    a = p.parse_args()
    asyncio.run(run([int(x) for x in a.counts.split(",")]))


if __name__ == "__main__":
    main()
