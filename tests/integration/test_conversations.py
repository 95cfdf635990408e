"""Two people, three devices, regular and secret threads, against a real server process."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ServerProcess
from tests.integration.people import drain, link_second, register, texts


async def test_regular_and_secret_threads_across_three_devices(server: ServerProcess, tmp_path: Path) -> None:
    a1 = await register(server.url, tmp_path, "alice")
    b1 = await register(server.url, tmp_path, "bob")
    a2 = await link_second(a1, tmp_path)
    devices = [a1, a2, b1]
    try:
        assert a2.is_linked and a2.identity is not None and a1.identity is not None
        assert a2.identity.public_b64 == a1.identity.public_b64
        script = [
            (a1, "bob", "regular 1 from alice's phone"),
            (b1, "alice", "regular 2 from bob"),
            (a2, "bob", "regular 3 from alice's laptop"),
        ]
        secret_script = [
            (a1, "bob", "secret 1 from alice's phone"),
            (b1, "alice", "secret 2 from bob"),
            (a2, "bob", "secret 3 from alice's laptop"),
            (b1, "alice", "secret 4 from bob"),
        ]
        for secret, steps in ((False, script), (True, secret_script)):
            for sender, peer, text in steps:
                for d in devices:
                    await drain(d)  # everybody is online and up to date, as in a live chat
                await sender.send_text(peer, text, secret=secret)
            for d in devices:
                await drain(d)
            expected = [t for _, _, t in steps]
            for d in devices:
                peer = "bob" if d.handle == "alice" else "alice"
                got = texts(d.messages(peer, secret=secret))
                assert got == expected, (d.handle, d.device_id, secret, got)

        # the two kinds of thread are separate
        assert all("secret" not in t for t in texts(b1.messages("alice", secret=False)))
        summaries = {(t.peer, t.is_secret) for t in b1.threads()}
        assert summaries == {("alice", False), ("alice", True)}
        # a second sync brings nothing new and shows nothing twice
        assert await a2.sync() == 0
        assert len(texts(a2.messages("bob", secret=True))) == 4
    finally:
        for d in devices:
            await d.close()


async def test_offline_delivery_of_100_secret_messages(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        sent = [f"offline message {i:03d}" for i in range(100)]
        for text in sent:  # bob is offline the whole time
            await alice.send_text("bob", text, secret=True)
        await drain(bob)
        assert texts(bob.messages("alice", secret=True)) == sent
        assert await bob.sync() == 0  # everything was acknowledged
        await drain(bob)
        assert texts(bob.messages("alice", secret=True)) == sent
    finally:
        await alice.close()
        await bob.close()


async def test_new_device_sees_regular_history_but_no_old_secrets(server: ServerProcess, tmp_path: Path) -> None:
    from tests.integration.people import PASSPHRASE, PASSWORD
    from veil.client.device import Device

    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        for i in range(120):  # more than one page of history
            await (alice if i % 2 else bob).send_text("bob" if i % 2 else "alice", f"regular {i}")
        await alice.send_text("bob", "an old secret", secret=True)
        laptop = await Device.login(tmp_path / "bob-laptop", server.url, "bob", PASSWORD, PASSPHRASE)
        try:
            assert texts(laptop.messages("alice", secret=False)) == [f"regular {i}" for i in range(120)]
            await drain(laptop)
            assert texts(laptop.messages("alice", secret=True)) == []
        finally:
            await laptop.close()
    finally:
        await alice.close()
        await bob.close()
