"""While a device holds its stream open, it sends on it (binary Send frames) instead of REST."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.integration.people import drain, link_second, register, texts
from veil.client.errors import ServerRejected
from veil.client.stream import listen


def _rest_sends(server: ServerProcess) -> int:
    return server.log_bytes().count(b"POST /v1/messages ")


async def test_sends_go_over_the_open_stream(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    stop = asyncio.Event()
    receiving = asyncio.create_task(listen(alice, stop=stop))
    try:
        for _ in range(100):
            if alice.stream_link is not None:
                break
            await asyncio.sleep(0.05)
        assert alice.stream_link is not None
        before = _rest_sends(server)
        sent = [f"over the stream {i}" for i in range(30)]
        for text in sent:
            await alice.send_text("bob", text, secret=True)
        # bob adds a device: alice's cached device list is stale, the server says so in SendResult
        bob2 = await link_second(bob, tmp_path)
        await alice.send_text("bob", "to both of bob's devices", secret=True)
        await drain(bob)
        await drain(bob2)
        assert texts(bob.messages("alice", secret=True)) == [*sent, "to both of bob's devices"]
        assert texts(bob2.messages("alice", secret=True)) == ["to both of bob's devices"]
        await asyncio.sleep(0.3)
        assert _rest_sends(server) == before  # nothing went through POST /v1/messages
        await bob2.close()
    finally:
        stop.set()
        await receiving
        await alice.close()
        await bob.close()


async def test_a_revoked_device_stops_listening_with_a_clear_error(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    phone = await link_second(alice, tmp_path)
    listening = asyncio.create_task(listen(phone))
    for _ in range(100):
        if phone.stream_link is not None:
            break
        await asyncio.sleep(0.05)
    assert phone.stream_link is not None
    await alice.revoke(phone.device_id)
    with pytest.raises(ServerRejected) as info:
        await asyncio.wait_for(listening, 10)  # closed with 4401: no reconnect loop
    assert info.value.status == 401 and "revoked" in str(info.value)
    with pytest.raises(ServerRejected):  # and a fresh attempt is refused the same way
        await asyncio.wait_for(listen(phone), 10)
