"""Pipelined secret sends (several send_text calls in flight at once), the outbox that keeps
them across a crash, and batch receiving with a bad envelope in the middle."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from tests.conftest import ServerProcess
from tests.integration.people import PASSPHRASE, drain, link_second, notices, register, texts
from veil.client.device import Device
from veil.client.stream import listen
from veil.protocol.encoding import b64encode


async def _open_stream(device: Device, stop: asyncio.Event) -> asyncio.Task[None]:
    task = asyncio.create_task(listen(device, stop=stop))
    for _ in range(200):
        if device.stream_link is not None:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError("the stream did not open")


async def test_pipelined_sends_keep_order_and_show_once(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    stop = asyncio.Event()
    streaming = await _open_stream(alice, stop)
    try:
        first = [f"pipelined {i}" for i in range(150)]
        shown = await asyncio.gather(*(alice.send_text("bob", t, secret=True) for t in first))
        assert [m.text for m in shown] == first
        # bob links a device while alice keeps sending: her in-flight sends meet device_mismatch,
        # refresh, re-encrypt and retry, still in order
        bob2 = await link_second(bob, tmp_path)
        second = [f"after the new device {i}" for i in range(60)]
        await asyncio.gather(*(alice.send_text("bob", t, secret=True) for t in second))
        await drain(bob)
        await drain(bob2)
        assert texts(bob.messages("alice", secret=True)) == first + second
        assert texts(bob2.messages("alice", secret=True)) == second
        assert texts(alice.messages("bob", secret=True)) == first + second  # each shown once
        assert alice.store.outbox() == []  # every entry answered and dropped
        assert await bob.sync() == 0
        await bob2.close()
    finally:
        stop.set()
        await streaming
        await alice.close()
        await bob.close()


async def test_pipelined_sends_without_a_stream_go_over_rest_in_order(server: ServerProcess,
                                                                       tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        sent = [f"rest {i}" for i in range(20)]
        await asyncio.gather(*(alice.send_text("bob", t, secret=True) for t in sent))
        await drain(bob)
        assert texts(bob.messages("alice", secret=True)) == sent
        assert texts(alice.messages("bob", secret=True)) == sent
    finally:
        await alice.close()
        await bob.close()


_SENDER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from veil.client.device import Device
    from veil.client.stream import listen

    async def main() -> None:
        alice = await Device.open(Path(sys.argv[1]), sys.argv[2])
        stop = asyncio.Event()
        asyncio.create_task(listen(alice, stop=stop))
        while alice.stream_link is None:
            await asyncio.sleep(0.01)

        slots = asyncio.Semaphore(32)  # sends keep being issued: some are always in flight
        lost = False
        answer = alice.outbox.on_result

        def on_result(result: object) -> None:  # from some point the server's answers get lost
            if not lost:
                answer(result)

        alice.outbox.on_result = on_result

        async def one(i: int) -> None:
            nonlocal lost
            try:
                await alice.send_text("bob", f"crash {i}", secret=True)
                print(f"shown {i}", flush=True)
                if i >= int(sys.argv[4]) and not lost:
                    lost = True
                    print("answers lost", flush=True)
            finally:
                slots.release()

        tasks = []
        for i in range(int(sys.argv[3])):
            await slots.acquire()
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        print("all done", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def test_sigkill_with_queued_sends_resends_them_on_reopen(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text("bob", "before", secret=True)  # sessions and device lists in place
    profile = alice.profile
    await alice.close()
    total = 100_000  # far more than get sent before the kill
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _SENDER, str(profile), PASSPHRASE, str(total),
                                                "200", stdout=subprocess.PIPE)
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "the sender process ended early"
            if line.startswith("shown "):
                acked.append(int(line.split()[1]))
            elif line.startswith("answers lost"):
                break
        # the server has committed (some of) the sends in flight, but their answers never came:
        # the device dies with them queued (and maybe others not yet on the wire)
        await asyncio.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()

    alice = await Device.open(profile, PASSPHRASE)
    stop = asyncio.Event()
    try:
        queued = alice.store.outbox()
        assert queued, "the kill should leave queued sends behind"
        streaming = await _open_stream(alice, stop)  # connecting re-sends the queued entries
        for _ in range(400):
            if not alice.store.outbox():
                break
            await asyncio.sleep(0.05)
        assert alice.store.outbox() == []
        stop.set()
        await streaming
        await drain(bob)
        got = texts(bob.messages("alice", secret=True))
        shown = texts(alice.messages("bob", secret=True))
        assert len(got) == len(set(got)) and len(shown) == len(set(shown))  # nothing twice
        assert got == shown  # what alice shows as sent is exactly what bob has, in order
        numbers = [int(t.split()[1]) for t in got[1:]]
        assert numbers == sorted(numbers)
        assert {f"crash {i}" for i in acked} <= set(got)  # every message shown as sent arrived
        assert len(got) - 1 > len(acked)  # and the queued ones too
    finally:
        stop.set()
        await alice.close()
        await bob.close()


async def test_batch_with_a_bad_envelope_keeps_the_others(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        await alice.send_text("bob", "one", secret=True)
        await asyncio.gather(*(alice.send_text("bob", t, secret=True) for t in ("two", "three")))
        # a garbled envelope from alice's device, as a buggy or hostile sender would post it
        entry = (await alice.directory.get("bob")).devices[0]
        await alice.api.send({"client_message_id": uuid.uuid4().hex, "recipient": "bob", "skipped": [],
                              "commitment": b64encode(os.urandom(32)),
                              "envelopes": [{"handle": "bob", "device_id": entry.device_id, "olm_type": 1,
                                             "body": b64encode(os.urandom(120))}]})
        await asyncio.gather(*(alice.send_text("bob", t, secret=True) for t in ("four", "five", "six")))
        envelope_count = 7
        await drain(bob)  # the whole backlog arrives as one Deliver frame: one batch, one commit
        thread = bob.messages("alice", secret=True)
        assert texts(thread) == ["one", "two", "three", "four", "five", "six"]
        assert len(notices(thread, "decrypt_failed")) == 1
        assert len(thread) == envelope_count
        assert await bob.sync() == 0  # every envelope was acknowledged, the bad one too
        # a replay of the whole batch (a crash between commit and ack) shows nothing twice
        await drain(bob)
        assert len(bob.messages("alice", secret=True)) == envelope_count
    finally:
        await alice.close()
        await bob.close()
