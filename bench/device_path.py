"""Benchmark 4: the device path — secret text messages per second end to end through the
Device API (encrypt, store, send, receive, decrypt, store, acknowledge), and new sessions/s.

    .venv/bin/python -m bench.device_path [--messages 500] [--sessions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import record, start_node
from veil.client.device import Device
from veil.client.stream import listen
from veil.protocol.olm import OlmAccount


async def _messages(url: str, root: Path, n: int, run: int) -> float:
    a, b = f"alice{run}", f"bob{run}"
    alice = await Device.register(root / "alice", url, a, "password1", "bench passphrase")
    bob = await Device.register(root / "bob", url, b, "password1", "bench passphrase")
    try:
        await alice.send_text(b, "warm up", secret=True)
        await asyncio.wait_for(listen(bob, until_empty=True), 60)
        got = asyncio.Event()
        seen = 0

        def on_message(_m: object) -> None:
            nonlocal seen
            seen += 1
            if seen >= n:
                got.set()

        bob.add_listener(on_message)
        stop = asyncio.Event()
        receiver = asyncio.create_task(listen(bob, stop=stop))
        sender = asyncio.create_task(listen(alice, stop=stop))  # alice sends on her open stream
        for _ in range(1000):  # wait (bounded) until alice's stream is open
            if alice.stream_link is not None:
                break
            await asyncio.sleep(0.01)
        start = time.perf_counter()
        for i in range(n):
            await alice.send_text(b, f"message {i}", secret=True)
        await asyncio.wait_for(got.wait(), 300)
        elapsed = time.perf_counter() - start
        stop.set()
        await receiver
        await sender
        return n / elapsed
    finally:
        await alice.close()
        await bob.close()


def _sessions(n: int) -> float:
    """Olm session set-up (outbound + inbound from a pre-key message), the crypto part alone."""
    bob = OlmAccount()
    keys = list(bob.generate_one_time_keys(min(n, bob.max_one_time_keys)).values())
    start = time.perf_counter()
    done = 0
    while done < n:
        for otk in keys:
            alice = OlmAccount()
            session = alice.outbound_session(bob.curve25519, otk)
            _t, body = session.encrypt(b"hello")
            bob.inbound_session(alice.curve25519, body)
            done += 1
            if done >= n:
                break
        keys = list(bob.generate_one_time_keys(min(n - done, bob.max_one_time_keys)).values()) if done < n else []
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = start_node(Path(tmp) / "server")
        try:
            rates = []
            for r in range(args.runs):
                rates.append(asyncio.run(_messages(node.url, Path(tmp) / f"run{r}", args.messages, r)))
        finally:
            node.stop()
    sessions = statistics.median(_sessions(args.sessions) for _ in range(args.runs))
    record("Device path (benchmark 4)", [
        "secret text messages end to end through the Device API "
        "(sequential sends on the sender's stream, receiver on its stream): "
        f"median {statistics.median(rates):.0f} msg/s over {args.runs} runs of {args.messages} "
        f"({', '.join(f'{x:.0f}' for x in rates)}); target 5,000",
        f"new Olm sessions (outbound + inbound, crypto only): median {sessions:.0f}/s; target 2,000",
    ])


if __name__ == "__main__":
    main()
