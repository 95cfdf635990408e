"""Safety numbers, QR verification and interactive emoji verification between devices."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.integration.people import PASSPHRASE, PASSWORD, drain, link_second, notices, register
from veil.client.device import Device
from veil.client.errors import UsageError
from veil.client.stream import listen


async def test_safety_numbers_match_and_qr_verifies(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    alice2 = await link_second(alice, tmp_path)
    devices = [alice, alice2, bob]
    try:
        await alice.send_text("bob", "hi", secret=True)
        await bob.send_text("alice", "hi back", secret=True)
        for d in devices:
            await drain(d)
        number = alice.safety_number("bob")
        assert len(number) == 60 and number.isdigit()
        assert bob.safety_number("alice") == number
        assert alice2.safety_number("bob") == number  # linking a device does not change it
        assert not alice.is_verified("bob")
        alice.verifications.verify_qr("bob", bob.verifications.qr("alice"))
        assert alice.is_verified("bob") and notices(alice.messages("bob", secret=True), "verified")
        # a QR code from someone else does not verify
        carol = await register(server.url, tmp_path, "carol")
        devices.append(carol)
        await carol.send_text("alice", "hello", secret=True)
        await drain(alice)
        with pytest.raises(UsageError):
            alice.verifications.verify_qr("carol", bob.verifications.qr("alice"))
        assert not alice.is_verified("carol")

    finally:
        for d in devices:
            await d.close()


async def test_identity_change_drops_verified(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text("bob", "hi", secret=True)
    await drain(bob)
    alice.mark_verified("bob")
    assert alice.is_verified("bob")
    await bob.close()
    bob2 = await Device.login(tmp_path / "bob-new", server.url, "bob", PASSWORD, PASSPHRASE)
    try:
        await bob2.reset_identity(PASSWORD)
        with pytest.raises(Exception, match="identity key changed"):
            await alice.send_text("bob", "still there?", secret=True)
        assert not alice.is_verified("bob")
        assert notices(alice.messages("bob", secret=True), "identity_changed")
        assert notices(alice.messages("bob", secret=False), "identity_changed")
    finally:
        await alice.close()
        await bob2.close()


@pytest.mark.parametrize("match", [True, False])
async def test_emoji_verification(server: ServerProcess, tmp_path: Path, match: bool) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    stop = asyncio.Event()
    await alice.send_text("bob", "let's verify", secret=True)
    await drain(bob)
    tasks = [asyncio.create_task(listen(d, stop=stop)) for d in (alice, bob)]
    try:
        va = await alice.verifications.start("bob")
        for _ in range(200):
            if bob.verifications.incoming():
                break
            await asyncio.sleep(0.05)
        (vb,) = bob.verifications.incoming()
        bob_emoji = await vb.accept()
        await va.wait("compare", timeout=20)
        assert len(va.emoji) == 7 and va.emoji == bob_emoji  # the same 7 emoji, with names
        assert all(name for _, name in bob_emoji)
        if match:
            await va.confirm()
            await vb.confirm()
            await va.wait("verified", timeout=20)
            await vb.wait("verified", timeout=20)
            assert alice.is_verified("bob") and bob.is_verified("alice")
        else:
            await vb.cancel()  # bob saw different emoji
            await va.wait("cancelled", timeout=20)
            assert not alice.is_verified("bob") and not bob.is_verified("alice")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await alice.close()
        await bob.close()
