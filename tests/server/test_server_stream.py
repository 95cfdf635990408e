"""WS /v1/stream on a real uvicorn server in the test's loop: drain, live push, ack, bad frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.server.api_fixtures import make_config
from tests.server.server_helpers import DeviceKeys, FakeClock, signed_list_json
from veil.protocol.encoding import b64encode
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.wire import (
    KIND_REGULAR,
    Ack,
    Deliver,
    KeysLow,
    Ping,
    QueueEmpty,
    ServerFrame,
    StreamError,
    decode_server_frame,
    encode_frame,
)
from veil.server.app import build_app

TIMEOUT = 10


class Dev:
    def __init__(self, handle: str, device_id: str, token: str, keys: DeviceKeys) -> None:
        self.handle, self.device_id, self.token, self.keys = handle, device_id, token, keys

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Live:
    def __init__(self, http: httpx.AsyncClient, ws_url: str) -> None:
        self.http = http
        self.ws_url = ws_url

    def stream(self, headers: dict[str, str]) -> connect:
        return connect(self.ws_url, additional_headers=headers, open_timeout=TIMEOUT)

    async def person(self, handle: str) -> Dev:
        identity, keys = IdentityKeyPair.generate(), DeviceKeys()
        r = await self.http.post("/v1/accounts", json={"handle": handle, "display_name": handle,
                                                       "password": "password1",
                                                       "identity_key": identity.public_b64})
        assert r.status_code == 201
        dev = await self.login(handle, keys)
        r = await self.http.put("/v1/devicelist", headers=dev.headers,
                                json=signed_list_json(identity, handle, 1, [(dev.device_id, keys)]))
        assert r.status_code == 200, r.text
        return dev

    async def login(self, handle: str, keys: DeviceKeys) -> Dev:
        r = await self.http.post("/v1/devices", json={"handle": handle, "password": "password1",
                                                      "device_name": "d", "curve25519": keys.curve25519,
                                                      "ed25519": keys.ed25519})
        assert r.status_code == 201
        return Dev(handle, r.json()["device_id"], r.json()["token"], keys)

    async def send(self, sender: Dev, to: Dev, cmid: str, body: bytes = b"\x02ciphertext") -> None:
        env = {"handle": to.handle, "device_id": to.device_id, "olm_type": 1, "body": b64encode(body)}
        r = await self.http.post("/v1/messages", headers=sender.headers, json={
            "client_message_id": cmid, "recipient": to.handle, "skipped": [], "envelopes": [env]})
        assert r.status_code == 200, r.text

    async def upload_keys(self, dev: Dev, n: int) -> None:
        otks = [dev.keys.prekey(dev.handle, dev.device_id, f"k{i}") for i in range(n)]
        r = await self.http.put("/v1/keys", headers=dev.headers, json={"one_time_keys": otks})
        assert r.status_code == 200


@pytest.fixture
async def live(tmp_path: Path, fresh_db: str) -> AsyncIterator[Live]:
    app = build_app(make_config(tmp_path, fresh_db), clock=FakeClock())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False,
                                           ws="websockets-sansio", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as http:
            yield Live(http, f"ws://127.0.0.1:{port}/v1/stream")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)


async def frame(ws: ClientConnection) -> ServerFrame:
    data = await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert isinstance(data, bytes)
    return decode_server_frame(data)


async def test_bad_token_closes_with_4401(live: Live) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        async with live.stream(headers) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert info.value.rcvd is not None and info.value.rcvd.code == 4401


async def test_drain_then_live_then_ack(live: Live) -> None:
    alice, bob = await live.person("alice"), await live.person("bob")
    await live.upload_keys(bob, 10)
    for i in range(3):
        await live.send(alice, bob, f"q{i}", bytes([i]) * 4)
    async with live.stream(bob.headers) as ws:
        first = await frame(ws)
        assert isinstance(first, Deliver)
        assert [e.client_message_id for e in first.envelopes] == ["q0", "q1", "q2"]
        assert [e.body for e in first.envelopes] == [bytes([i]) * 4 for i in range(3)]
        assert {(e.sender, e.sender_device) for e in first.envelopes} == {("alice", alice.device_id)}
        assert isinstance(await frame(ws), QueueEmpty)  # 10 keys: no KeysLow
        await live.send(alice, bob, "live")
        pushed = await frame(ws)
        assert isinstance(pushed, Deliver) and [e.client_message_id for e in pushed.envelopes] == ["live"]
        await ws.send(encode_frame(Ack(ids=[e.id for e in first.envelopes])))
        await ws.send(encode_frame(Ping()))
        # A claim takes bob below 10 one-time keys: he is told on his stream.
        r = await live.http.post("/v1/keys/claim", headers=alice.headers,
                                 json={"devices": [{"handle": "bob", "device_id": bob.device_id}]})
        assert len(r.json()["keys"]) == 1
        assert await frame(ws) == KeysLow(one_time_keys=9)
    # The acked envelopes are gone; the unacked one comes again on the next connection.
    left = (await live.http.get("/v1/messages", headers=bob.headers)).json()["envelopes"]
    assert [e["client_message_id"] for e in left] == ["live"]
    async with live.stream(bob.headers) as ws:
        again = await frame(ws)
        assert isinstance(again, Deliver) and [e.client_message_id for e in again.envelopes] == ["live"]
        assert isinstance(await frame(ws), QueueEmpty)
        assert await frame(ws) == KeysLow(one_time_keys=9)  # still low when it connects


async def test_large_backlog_is_sent_in_batches(live: Live) -> None:
    alice, bob = await live.person("alice"), await live.person("bob")
    await live.upload_keys(bob, 10)
    for i in range(230):
        await live.send(alice, bob, f"b{i}")
    async with live.stream(bob.headers) as ws:
        sizes = []
        while isinstance(f := await frame(ws), Deliver):
            sizes.append(len(f.envelopes))
        assert isinstance(f, QueueEmpty)
        assert sizes == [100, 100, 30]


async def test_bad_frames_get_stream_error_and_connection_stays(live: Live) -> None:
    alice, bob = await live.person("alice"), await live.person("bob")
    await live.upload_keys(bob, 10)
    async with live.stream(bob.headers) as ws:
        assert isinstance(await frame(ws), QueueEmpty)
        await ws.send(b"\xc1garbage")
        err = await frame(ws)
        assert isinstance(err, StreamError) and err.code == "bad_frame"
        await ws.send("hello")  # text frames are not the protocol either
        assert isinstance(await frame(ws), StreamError)
        await live.send(alice, bob, "after")
        got = await frame(ws)
        assert isinstance(got, Deliver) and got.envelopes[0].client_message_id == "after"


async def test_regular_messages_reach_the_stream(live: Live) -> None:
    alice, bob = await live.person("alice"), await live.person("bob")
    await live.upload_keys(bob, 10)
    async with live.stream(bob.headers) as ws:
        assert isinstance(await frame(ws), QueueEmpty)
        r = await live.http.post("/v1/threads/bob/messages", headers=alice.headers,
                                 json={"client_message_id": "r1", "text": "hi bob"})
        assert r.status_code == 201
        got = await frame(ws)
        assert isinstance(got, Deliver) and got.envelopes[0].kind == KIND_REGULAR


async def test_revoked_device_stream_is_closed(live: Live) -> None:
    bob = await live.person("bob")
    other = await live.login("bob", DeviceKeys())
    async with live.stream(other.headers) as ws:
        assert isinstance(await frame(ws), QueueEmpty)
        assert isinstance(await frame(ws), KeysLow)
        r = await live.http.delete(f"/v1/devices/{other.device_id}", headers=bob.headers)
        assert r.status_code == 200
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4401


async def test_backlog_beyond_the_unacked_limit_waits_for_acks(live: Live,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from veil.server.routes import stream

    monkeypatch.setattr(stream, "MAX_UNACKED", 5)
    alice, bob = await live.person("alice"), await live.person("bob")
    await live.upload_keys(bob, 10)
    for i in range(12):
        await live.send(alice, bob, f"m{i}")
    async with live.stream(bob.headers) as ws:
        got: list[str] = []
        for expected in (5, 5, 2):
            f = await frame(ws)
            assert isinstance(f, Deliver) and len(f.envelopes) == expected
            got += [e.client_message_id for e in f.envelopes]
            await ws.send(encode_frame(Ack(ids=[e.id for e in f.envelopes])))
        assert isinstance(await frame(ws), QueueEmpty)  # only after the whole backlog went out
        assert got == [f"m{i}" for i in range(12)]
