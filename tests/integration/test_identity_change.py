"""A re-created account identity: new safety number, held messages, explicit confirmation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.integration.people import PASSPHRASE, PASSWORD, drain, notices, register, texts
from veil.client.device import Device
from veil.client.errors import IdentityChanged


async def test_changed_identity_holds_sends_until_confirmed(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    await alice.send_text("bob", "before", secret=True)
    await drain(bob)
    await bob.close()
    # bob loses his phone, logs in on a new one and re-creates his identity
    bob2 = await Device.login(tmp_path / "bob-new", server.url, "bob", PASSWORD, PASSPHRASE)
    try:
        await bob2.reset_identity(PASSWORD)
        with pytest.raises(IdentityChanged):
            await alice.send_text("bob", "held until alice confirms", secret=True)
        secret_thread = alice.messages("bob", secret=True)
        assert notices(secret_thread, "identity_changed")
        assert notices(alice.messages("bob", secret=False), "identity_changed")
        assert secret_thread[-1].status == "held"
        await drain(bob2)
        assert texts(bob2.messages("alice", secret=True)) == []  # nothing was sent to the new key
        assert await alice.confirm_identity("bob") == 1
        await drain(bob2)
        assert texts(bob2.messages("alice", secret=True)) == ["held until alice confirms"]
        assert [m.status for m in alice.messages("bob", secret=True) if not m.is_notice][-1] == "sent"
        await alice.send_text("bob", "after", secret=True)
        await drain(bob2)
        assert texts(bob2.messages("alice", secret=True))[-1] == "after"
    finally:
        await alice.close()
        await bob2.close()
