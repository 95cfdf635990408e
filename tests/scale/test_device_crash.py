"""A device killed with SIGKILL between receiving a message and acknowledging it gets the message
again when it comes back, and shows it once.

The receiving device runs in a process of its own (tests/scale/device_child.py) behind a small
TCP proxy. In the first round the proxy swallows what the device sends on its stream, so its
acknowledgement never reaches the server: the process is killed once that acknowledgement has
left it, that is once the message is committed to its store, and the server still holds the
envelope. In the other rounds the process is killed at a random moment after it has begun
storing a batch (before or after its commit, before or after its acknowledgement). Each time the
device is then opened again, here, and receives until its queue is empty: every message shows
exactly once.

Two more tests pin a bug found here and fixed in `inbox._receive_secret`: the envelope's digest
was marked seen before the sender's device list was looked up, and that look-up saves what it
fetched with a commit, so the digest could be committed before the message. Killed before the
batch's own commit, or failing a look-up later in the batch, the device then ignored the
redelivered envelope as a replay: the message was lost. The digest is now marked after the
look-up.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.integration.people import PASSPHRASE, notices, register, texts
from tests.scale.proxy import Proxy
from tests.scale.raw import wait_for
from veil.client.device import Device
from veil.client.stream import listen

pytestmark = pytest.mark.timeout(90)

ROUNDS = 5  # the first one deterministic (acknowledgement lost), the others killed at random
BATCH = 40  # messages per random round, queued before the device starts
ROOT = Path(__file__).resolve().parents[2]


class Child:
    """The receiving device's process and the lines it printed."""

    def __init__(self, proc: asyncio.subprocess.Process, kill_at: int) -> None:
        self.proc = proc
        self.shown: list[str] = []
        self.kill_at = kill_at  # killed as soon as it has shown this many messages (0: not by the reader)
        self.ready = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, profile: Path, log: Path, contacts: tuple[str, ...] = (), kill_at: int = 0) -> Child:
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.scale.device_child", str(profile), *contacts, cwd=ROOT,
                env={**os.environ, "VEIL_TEST_PASSPHRASE": PASSPHRASE},
                stdout=asyncio.subprocess.PIPE, stderr=err)
        child = cls(proc, kill_at)
        ready = asyncio.ensure_future(child.ready.wait())
        done, _ = await asyncio.wait({ready, child.reader}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if ready not in done and not (kill_at and child.shown):  # (killed by the reader already)
            child.kill()
            raise AssertionError(f"the device process did not open its stream: {log.read_text()[-2000:]}")
        return child

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            text = line.decode().rstrip("\n")
            if text == "ready":
                self.ready.set()
            elif text.startswith("shown "):
                self.shown.append(text.removeprefix("shown "))
                if len(self.shown) == self.kill_at:
                    self.kill()

    def dead(self) -> bool:
        return self.proc.returncode is not None

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()  # SIGKILL: no cleanup of any kind

    async def wait(self) -> None:
        await self.proc.wait()
        await self.reader


async def test_device_killed_between_receiving_and_acknowledging_shows_the_message_once(
        server: ServerProcess, tmp_path: Path) -> None:
    log = tmp_path / "device-child.log"
    sent: list[str] = []
    # per round: (messages the process began to store, of which committed, envelopes still queued)
    outcomes: list[tuple[int, int, int]] = []
    async with Proxy([server.url]) as proxy:
        alice = await register(server.url, tmp_path, "alice")
        bob = await register(proxy.url, tmp_path, "bob")
        profile = bob.profile
        await bob.close()
        try:
            for n in range(ROUNDS):
                lost_ack = n == 0
                batch = [f"round {n} message {i}" for i in range(1 if lost_ack else BATCH)]
                if not lost_ack:  # queued while the device is off: it gets them as one backlog
                    for text in batch:
                        await alice.send_text("bob", text, secret=True)
                    sent += batch
                # Killed right as it stores its k-th message of the backlog: in the middle of its
                # transaction, between its commit and its acknowledgement, or between batches.
                child = await Child.start(profile, log, ("alice",), kill_at=0 if lost_ack else random.randint(1, BATCH))
                try:
                    if lost_ack:
                        proxy.blackhole_streams = True
                        await alice.send_text("bob", batch[0], secret=True)
                        sent += batch
                        # The acknowledgement leaves the device only after its store committed.
                        assert await wait_for(lambda: proxy.dropped > 0, 20), "no acknowledgement sent"
                        assert child.shown == batch
                    else:
                        assert await wait_for(child.dead, 20), (child.kill_at, child.shown)
                    child.kill()
                finally:
                    child.kill()
                    await child.wait()
                    proxy.blackhole_streams = False

                # The device comes back: what it had stored, what the server still holds for it.
                bob = await Device.open(profile, PASSPHRASE)
                try:
                    before = texts(bob.messages("alice", secret=True))
                    queued = len((await bob.api.fetch(limit=500))["envelopes"])
                    outcomes.append((len(child.shown), len(set(batch) & set(before)), queued))
                    if lost_ack:
                        assert batch[0] in before, "the message was not committed before the kill"
                        assert queued == 1, "the server no longer holds the unacknowledged envelope"
                    assert max(Counter(before).values(), default=0) <= 1
                    await asyncio.wait_for(listen(bob, until_empty=True), 30)
                    thread = bob.messages("alice", secret=True)
                    shown_now = texts(thread)
                    assert sorted(shown_now) == sorted(sent), (
                        f"round {n}, killed after {len(child.shown)} shown ({outcomes[-1]}): "
                        f"missing {sorted(set(sent) - set(shown_now))}, "
                        f"twice {sorted(t for t, k in Counter(shown_now).items() if k > 1)}, "
                        f"notices {[(m.notice, m.text) for m in notices(thread)]}")
                    assert not notices(thread), [(m.notice, m.text) for m in notices(thread)]
                    assert (await bob.api.fetch(limit=500))["envelopes"] == []  # all acknowledged now
                finally:
                    await bob.close()
        finally:
            await alice.close()
    print(f"per round (began to store, committed, still queued on the server): {outcomes}")


async def test_device_killed_while_its_batch_waits_on_the_network_shows_every_message(
        server: ServerProcess, tmp_path: Path) -> None:
    """Alice's and Carol's messages wait for Bob's device as one batch. The device has just been
    opened: it looks Alice up (and commits that) when her message comes, shows it, then waits on
    Carol's look-up, which the proxy never answers; it is killed there, before its batch commits
    or acknowledges anything. Opened again, it must show both messages."""
    log = tmp_path / "device-child.log"
    async with Proxy([server.url]) as proxy:
        alice, carol, profile = await _two_messages_waiting(server, proxy, tmp_path)
        proxy.hold = [b"GET /v1/users/carol "]
        child = await Child.start(profile, log)
        try:
            assert await wait_for(lambda: proxy.held > 0, 20), child.shown
            assert child.shown == ["from alice"]  # stored, not committed: the batch is not done
        finally:
            child.kill()
            await child.wait()
            proxy.hold = []
        shown = await _reopen_and_drain(profile)
        await alice.close()
        await carol.close()
    assert sorted(shown) == ["from alice", "from carol"], shown


async def test_a_failed_sender_look_up_mid_batch_loses_no_message(server: ServerProcess, tmp_path: Path) -> None:
    """No crash: Carol's look-up fails once (the connection is cut, as when a node dies), so the
    device stops its batch there and reconnects; Carol's message comes again and must show."""
    async with Proxy([server.url]) as proxy:
        alice, carol, profile = await _two_messages_waiting(server, proxy, tmp_path)
        proxy.cut = [b"GET /v1/users/carol "]
        bob = await Device.open(profile, PASSPHRASE)
        stop = asyncio.Event()
        receiving = asyncio.create_task(listen(bob, stop=stop))
        try:
            assert await wait_for(lambda: proxy.cuts > 0, 20)
            proxy.cut = []
            # Receiving goes on; everything queued is processed and acknowledged.
            assert await wait_for(lambda: proxy.streams[0] >= 2, 20)  # it reconnected
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await receiving
            await bob.close()
        shown = await _reopen_and_drain(profile)
        await alice.close()
        await carol.close()
    assert sorted(shown) == ["from alice", "from carol"], shown


async def _two_messages_waiting(server: ServerProcess, proxy: Proxy, tmp_path: Path) -> tuple[Device, Device, Path]:
    """Alice and Carol (on the server) have each sent Bob (behind the proxy, closed) a message."""
    alice = await register(server.url, tmp_path, "alice")
    carol = await register(server.url, tmp_path, "carol")
    bob = await register(proxy.url, tmp_path, "bob")
    profile = bob.profile
    await bob.close()
    await alice.send_text("bob", "from alice", secret=True)
    await carol.send_text("bob", "from carol", secret=True)
    return alice, carol, profile


async def _reopen_and_drain(profile: Path) -> list[str]:
    """Open the device, receive until its queue is empty; every text line of its threads."""
    bob = await Device.open(profile, PASSPHRASE)
    try:
        await asyncio.wait_for(listen(bob, until_empty=True), 30)
        out: list[str] = []
        for peer in ("alice", "carol"):
            out += texts(bob.messages(peer, secret=True))
        return out
    finally:
        await bob.close()
