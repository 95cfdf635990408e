"""Disappearing messages on every device of both people, with a clock the test moves."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.conftest import ServerProcess
from tests.integration.people import PASSPHRASE, FakeClock, drain, link_second, notices, register, texts
from veil.client.device import Device


def _photo(path: Path) -> Path:
    Image.new("RGB", (64, 48), (200, 30, 90)).save(path, "PNG")
    return path


async def test_timer_countdowns_and_expiry(server: ServerProcess, tmp_path: Path) -> None:
    clock = FakeClock()
    alice = await register(server.url, tmp_path, "alice", clock)
    alice2 = await link_second(alice, tmp_path, clock=clock)
    bob = await register(server.url, tmp_path, "bob", clock)
    devices = [alice, alice2, bob]
    try:
        await alice.send_text("bob", "hello before the timer", secret=True)
        await alice.set_timer("bob", 5)
        for d in devices:
            await drain(d)
        for d in devices:
            peer = "bob" if d.handle == "alice" else "alice"
            assert d.timer(peer) == 5
            shown = [n.text for n in notices(d.messages(peer, secret=True), "timer")]
            who = "You" if d.handle == "alice" else "alice"
            assert shown == [f"{who} set disappearing messages to 5 seconds."], (d.device_id, shown)

        sent = await alice.send_text("bob", "this one disappears", secret=True)
        photo = await alice.send_media("bob", _photo(tmp_path / "p.png"), secret=True)
        assert sent.timer == 5 and sent.expires_at == clock.now + 5000
        for d in devices:
            await drain(d)
        bob_photo = next(m for m in bob.messages("alice", secret=True) if m.id == photo.id)
        assert bob_photo.attachment is not None
        bob_file = bob.profile / "attachments" / str(bob_photo.attachment["file"])
        assert bob_file.exists()

        clock.advance(3)
        await bob.mark_read("alice", secret=True)  # bob opens the thread: his countdown starts now
        clock.advance(2.5)  # the sender's 5 s are over; bob's are not
        assert alice.expire() == 2 and alice2.expire() == 2
        assert texts(alice.messages("bob", secret=True)) == ["hello before the timer"]
        assert texts(alice2.messages("bob", secret=True)) == ["hello before the timer"]
        assert bob.expire() == 0
        assert "this one disappears" in texts(bob.messages("alice", secret=True))

        # bob closes the app; his messages run out while it is closed
        await bob.close()
        clock.advance(3)
        bob = await Device.open(tmp_path / "bob-1", PASSPHRASE, clock=clock)
        devices[2] = bob
        assert texts(bob.messages("alice", secret=True)) == ["hello before the timer"]
        assert not bob_file.exists()  # the attachment bytes are gone, not hidden
        assert not any((alice.profile / "attachments").iterdir())
        # the record is gone from the store file too (not just hidden)
        assert bob.store.get_message(photo.id) is None
        # turning it off
        await bob.set_timer("alice", 0)
        await drain(alice)
        assert alice.timer("bob") == 0
        assert notices(alice.messages("bob", secret=True), "timer")[-1].text == \
            "bob turned off disappearing messages."
    finally:
        for d in devices:
            await d.close()
