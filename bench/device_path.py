"""Benchmark 4: the device path — secret text messages per second end to end through the
Device API (encrypt, store, send, receive, decrypt, store, acknowledge), and new sessions/s.

    .venv/bin/python -m bench.device_path [--messages 5000] [--sequential 500] [--in-flight 256]
                                          [--sessions 2000] [--runs 3] [--no-record]

Two message figures: pipelined (the sender keeps up to `--in-flight` send_text tasks running at
once, as an app with a UI does when the person types faster than a round trip, or a bot sends;
sends then share commits and `Sends` frames) and sequential (each send awaited before the
next: bound by the round trip). Alice and Bob run in this one process (one core), the server
in its own.
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


async def _messages(url: str, root: Path, n: int, run: int, in_flight: int = 1) -> float:
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
        if in_flight <= 1:
            for i in range(n):
                await alice.send_text(b, f"message {i}", secret=True)
        else:
            slots = asyncio.Semaphore(in_flight)

            async def one(i: int) -> None:
                try:
                    await alice.send_text(b, f"message {i}", secret=True)
                finally:
                    slots.release()

            tasks = []
            for i in range(n):
                await slots.acquire()
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
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
    """Olm session set-up (outbound + inbound from a pre-key message), the crypto part alone.

    Each session starts from a fresh one-time key of Bob's (generated in the timed loop, 50 at
    a time, as a device tops its keys up) and one of 8 Alice devices: making device accounts
    is not session set-up, so it happens before the clock starts."""
    bob = OlmAccount()
    alices = [OlmAccount() for _ in range(8)]
    start = time.perf_counter()
    keys = list(bob.generate_one_time_keys(min(n, bob.max_one_time_keys)).values())
    bob.mark_keys_as_published()
    done = 0
    while done < n:
        for otk in keys:
            alice = alices[done % len(alices)]
            session = alice.outbound_session(bob.curve25519, otk)
            _t, body = session.encrypt(b"hello")
            bob.inbound_session(alice.curve25519, body)
            done += 1
            if done >= n:
                break
        if done < n:
            keys = list(bob.generate_one_time_keys(min(n - done, bob.max_one_time_keys)).values())
            bob.mark_keys_as_published()
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000, help="messages per pipelined run")
    ap.add_argument("--sequential", type=int, default=500, help="messages per sequential run")
    ap.add_argument("--in-flight", type=int, default=256, help="send_text tasks at once (pipelined)")
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = start_node(Path(tmp) / "server")
        try:
            piped, seq = [], []
            for r in range(args.runs):  # alternate, so machine noise hits both alike
                piped.append(asyncio.run(_messages(node.url, Path(tmp) / f"p{r}", args.messages, 2 * r,
                                                   args.in_flight)))
                seq.append(asyncio.run(_messages(node.url, Path(tmp) / f"s{r}", args.sequential, 2 * r + 1)))
        finally:
            node.stop()
    sessions = [_sessions(args.sessions) for _ in range(args.runs)]
    lines = [
        "secret text messages end to end through the Device API, pipelined (up to "
        f"{args.in_flight} send_text tasks in flight, both streams open): median {statistics.median(piped):,.0f} "
        f"msg/s over {args.runs} runs of {args.messages} ({', '.join(f'{x:,.0f}' for x in piped)}); target 5,000",
        "the same, sequential (each send awaited before the next; latency-bound): median "
        f"{statistics.median(seq):,.0f} msg/s over {args.runs} runs of {args.sequential} "
        f"({', '.join(f'{x:,.0f}' for x in seq)})",
        f"new Olm sessions (outbound + inbound, crypto only): median {statistics.median(sessions):,.0f}/s over "
        f"{args.runs} runs of {args.sessions} ({', '.join(f'{x:,.0f}' for x in sessions)}); target 2,000",
    ]
    if args.no_record:
        print("\n".join(lines))
    else:
        record("Device path (benchmark 4)", lines)


if __name__ == "__main__":
    main()
