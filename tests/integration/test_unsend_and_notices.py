"""Unsend, read receipts, typing and screenshot notices between real devices."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.integration.people import FakeClock, drain, link_second, notices, register, texts
from veil.client.errors import UsageError


@pytest.mark.parametrize("secret", [True, False])
async def test_unsend_removes_everywhere(server: ServerProcess, tmp_path: Path, secret: bool) -> None:
    clock = FakeClock()
    alice = await register(server.url, tmp_path, "alice", clock)
    alice2 = await link_second(alice, tmp_path, clock=clock)
    bob = await register(server.url, tmp_path, "bob", clock)
    devices = [alice, alice2, bob]
    try:
        keep = await alice.send_text("bob", "keep me", secret=secret)
        oops = await alice.send_text("bob", "oops, wrong chat", secret=secret)
        for d in devices:
            await drain(d)
        with pytest.raises(UsageError, match="your own"):
            await bob.unsend("alice", oops.id, secret=secret)
        await alice.unsend("bob", oops.id, secret=secret)
        for d in devices:
            await drain(d)
        for d in devices:
            peer = "bob" if d.handle == "alice" else "alice"
            thread = d.messages(peer, secret=secret)
            assert texts(thread) == ["keep me"], (d.device_id, texts(thread))
            assert len(notices(thread, "unsent")) == 1
        clock.advance(25 * 3600)
        with pytest.raises(UsageError, match="24 hours"):
            await alice.unsend("bob", keep.id, secret=secret)
    finally:
        for d in devices:
            await d.close()


async def test_receipts_typing_and_screenshots(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        for secret in (True, False):
            m = await alice.send_text("bob", "did you read this?", secret=secret)
            await drain(bob)
            await bob.send_typing("alice", secret=secret)
            assert await bob.mark_read("alice", secret=secret) == 1
            await drain(alice)
            mine = next(x for x in alice.messages("bob", secret=secret) if x.id == m.id)
            assert mine.status == "read"
            assert alice.is_typing("bob", secret=secret)
        await bob.notify_screenshot("alice")
        await drain(alice)
        assert [n.text for n in notices(alice.messages("bob", secret=True), "screenshot")] == [
            "bob took a screenshot."]
    finally:
        await alice.close()
        await bob.close()
