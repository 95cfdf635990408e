"""Send frames on WS /v1/stream (real uvicorn server, SQLite and PostgreSQL): the semantics of
POST /v1/messages, answered by SendResult after the group commit, pushed to the receiver once."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections import deque

import msgspec
from websockets.asyncio.client import ClientConnection

from tests.server.server_helpers import DeviceKeys, signed_list_json
from tests.server.test_server_stream import Dev, Live, frame, live  # noqa: F401  (live: fixture)
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.wire import (
    Ack,
    Deliver,
    DeviceRef,
    Envelope,
    QueueEmpty,
    Results,
    Send,
    SendEnvelope,
    SendResult,
    Sends,
    ServerFrame,
    StreamError,
    decode_server_frame,
    encode_frame,
)

QUIET = 0.3  # seconds with no frame that count as "nothing more is coming"


class Account:
    """A person whose device list the test can re-sign (to add an active device)."""

    def __init__(self, server: Live, handle: str) -> None:
        self.live, self.handle = server, handle
        self.identity = IdentityKeyPair.generate()
        self.devices: list[Dev] = []
        self.version = 0

    async def create(self) -> Dev:
        r = await self.live.http.post("/v1/accounts", json={
            "handle": self.handle, "display_name": self.handle, "password": "password1",
            "identity_key": self.identity.public_b64})
        assert r.status_code == 201
        return await self.add_device()

    async def add_device(self) -> Dev:
        dev = await self.live.login(self.handle, DeviceKeys())
        self.devices.append(dev)
        self.version += 1
        r = await self.live.http.put("/v1/devicelist", headers=self.devices[0].headers, json=signed_list_json(
            self.identity, self.handle, self.version, [(d.device_id, d.keys) for d in self.devices]))
        assert r.status_code == 200, r.text
        return dev


def send_frame(to: list[Dev], cmid: str, body: bytes = b"\x02ct", commitment: bytes = b"",
               skipped: list[DeviceRef] | None = None) -> bytes:
    envs = [SendEnvelope(d.handle, d.device_id, 1, body) for d in to]
    return encode_frame(Send(cmid, to[0].handle, envs, skipped or [], commitment))


_answers: weakref.WeakKeyDictionary[ClientConnection, deque[SendResult]] = weakref.WeakKeyDictionary()


async def until(ws: ClientConnection, kind: type[ServerFrame]) -> ServerFrame:
    """The next frame of this type; KeysLow and QueueEmpty frames on the way are skipped. A Results
    frame counts as its SendResults, one after the other."""
    waiting = _answers.setdefault(ws, deque())
    if kind is SendResult and waiting:
        return waiting.popleft()
    while True:
        f = await frame(ws)
        if isinstance(f, Results):
            assert len(f.results) > 1, "a single answer travels as SendResult"
            if kind is SendResult:
                waiting.extend(f.results[1:])
                return f.results[0]
            waiting.extend(f.results)
            continue
        if isinstance(f, kind):
            return f
        assert not isinstance(f, (Deliver, SendResult, StreamError)), f


async def quiet(ws: ClientConnection) -> None:
    """No Deliver arrives for QUIET seconds."""
    while True:
        try:
            data = await asyncio.wait_for(ws.recv(), QUIET)
        except TimeoutError:
            return
        assert isinstance(data, bytes)
        f = decode_server_frame(data)
        assert not isinstance(f, Deliver), f


async def test_send_frame_is_stored_then_answered_then_pushed_once(live: Live) -> None:  # noqa: F811
    alice, bob = await live.person("alice"), await live.person("bob")
    async with live.stream(alice.headers) as wa, live.stream(bob.headers) as wb:
        await until(wb, QueueEmpty)
        await wa.send(send_frame([bob], "m1", b"hello"))
        res = await until(wa, SendResult)
        assert isinstance(res, SendResult) and res.ok and res.client_message_id == "m1" and res.count == 1
        # Answered after the commit: the envelope is in bob's mailbox already.
        stored = (await live.http.get("/v1/messages", headers=bob.headers)).json()["envelopes"]
        assert [e["client_message_id"] for e in stored] == ["m1"]
        got = await until(wb, Deliver)
        assert isinstance(got, Deliver) and [e.body for e in got.envelopes] == [b"hello"]
        e = got.envelopes[0]
        assert (e.sender, e.sender_device, e.server_ts, e.franking_tag) == ("alice", alice.device_id,
                                                                           res.server_ts, b"")
        await wb.send(encode_frame(Ack(ids=[e.id])))
        await quiet(wb)
    left = (await live.http.get("/v1/messages", headers=bob.headers)).json()["envelopes"]
    assert left == []


async def test_mismatch_answers_missing_and_stale_and_follows_device_list_uploads(live: Live) -> None:  # noqa: F811
    alice = await live.person("alice")
    bob_account = Account(live, "bob")
    bob = await bob_account.create()
    async with live.stream(alice.headers) as wa:
        await wa.send(send_frame([bob], "warm"))  # the device sets are now cached
        assert ok(await until(wa, SendResult))
        ghost = Dev("bob", "GHOSTDEVICE", "", DeviceKeys())
        await wa.send(send_frame([bob, ghost], "m1"))
        res = await until(wa, SendResult)
        assert isinstance(res, SendResult) and not res.ok and res.error == "device_mismatch"
        assert res.missing == [] and res.stale == [DeviceRef("bob", "GHOSTDEVICE")]
        # Bob activates a second device: the cached set is dropped at once.
        second = await bob_account.add_device()
        await wa.send(send_frame([bob], "m2"))
        res = await until(wa, SendResult)
        assert isinstance(res, SendResult) and res.error == "device_mismatch"
        assert res.missing == [DeviceRef("bob", second.device_id)] and res.stale == []
        # Skipping it is allowed, as on the REST path; naming both is right.
        await wa.send(send_frame([bob], "m3", skipped=[DeviceRef("bob", second.device_id)]))
        assert ok(await until(wa, SendResult))
        await wa.send(send_frame([bob, second], "m4"))
        assert ok(await until(wa, SendResult))
        # Revoking it drops the cached set again.
        r = await live.http.delete(f"/v1/devices/{second.device_id}", headers=bob.headers)
        assert r.status_code == 200
        await wa.send(send_frame([bob, second], "m5"))
        res = await until(wa, SendResult)
        assert isinstance(res, SendResult) and res.stale == [DeviceRef("bob", second.device_id)]
        await wa.send(encode_frame(Send("m6", "nobody_here", [], [], b"")))
        res = await until(wa, SendResult)
        assert isinstance(res, SendResult) and res.error == "unknown_user"


def ok(f: ServerFrame) -> bool:
    return isinstance(f, SendResult) and f.ok


async def test_retry_is_idempotent_even_after_the_device_lists_changed(live: Live) -> None:  # noqa: F811
    alice = await live.person("alice")
    bob_account = Account(live, "bob")
    bob = await bob_account.create()
    async with live.stream(alice.headers) as wa, live.stream(bob.headers) as wb:
        await until(wb, QueueEmpty)
        await wa.send(send_frame([bob], "same"))
        await wa.send(send_frame([bob], "same"))  # a retry in the same tick
        first, second = await until(wa, SendResult), await until(wa, SendResult)
        assert isinstance(first, SendResult) and isinstance(second, SendResult)
        assert first.ok and second.ok and (first.server_ts, first.count) == (second.server_ts, second.count)
        await bob_account.add_device()
        await wa.send(send_frame([bob], "same"))  # a later retry: answered as the first call was
        third = await until(wa, SendResult)
        assert isinstance(third, SendResult) and third.ok and third.server_ts == first.server_ts
        got = await until(wb, Deliver)
        assert isinstance(got, Deliver) and len(got.envelopes) == 1
        await quiet(wb)
    # The REST path sees the same key as taken.
    env = {"handle": "bob", "device_id": bob.device_id, "olm_type": 1, "body": "AAAA"}
    r = await live.http.post("/v1/messages", headers=alice.headers, json={
        "client_message_id": "same", "recipient": "bob", "skipped": [], "envelopes": [env]})
    assert r.status_code == 200 and r.json()["server_ts"] == first.server_ts


async def test_blocked_sender_is_dropped_silently(live: Live) -> None:  # noqa: F811
    alice_account = Account(live, "alice")
    alice = await alice_account.create()
    alice2 = await alice_account.add_device()
    bob = await live.person("bob")
    async with live.stream(alice.headers) as wa, live.stream(bob.headers) as wb, \
            live.stream(alice2.headers) as wa2:
        await until(wb, QueueEmpty)
        await until(wa2, QueueEmpty)
        await wa.send(send_frame([bob, alice2], "before"))
        assert ok(await until(wa, SendResult))
        assert isinstance(await until(wb, Deliver), Deliver)
        assert isinstance(await until(wa2, Deliver), Deliver)
        assert (await live.http.put("/v1/blocks/alice", headers=bob.headers)).status_code == 200
        await wa.send(send_frame([bob, alice2], "during"))
        assert ok(await until(wa, SendResult))  # the same answer: nothing gives the block away
        own = await until(wa2, Deliver)  # alice's other device still gets its copy
        assert isinstance(own, Deliver) and own.envelopes[0].client_message_id == "during"
        await quiet(wb)
        assert (await live.http.delete("/v1/blocks/alice", headers=bob.headers)).status_code == 200
        await wa.send(send_frame([bob, alice2], "after"))
        assert ok(await until(wa, SendResult))
        got = await until(wb, Deliver)
        assert isinstance(got, Deliver) and [e.client_message_id for e in got.envelopes] == ["after"]


async def test_franking_tag_is_added_and_a_bad_commitment_refused(live: Live) -> None:  # noqa: F811
    alice, bob = await live.person("alice"), await live.person("bob")
    commitment = os.urandom(32)
    async with live.stream(alice.headers) as wa, live.stream(bob.headers) as wb:
        await until(wb, QueueEmpty)
        await wa.send(send_frame([bob], "f1", commitment=commitment))
        assert ok(await until(wa, SendResult))
        got = await until(wb, Deliver)
        assert isinstance(got, Deliver)
        e: Envelope = got.envelopes[0]
        assert e.commitment == commitment and len(e.franking_tag) == 32
        await wa.send(send_frame([bob], "f2", commitment=b"short"))
        res = await until(wa, SendResult)
        assert isinstance(res, SendResult) and res.error == "bad_commitment"
    stored = (await live.http.get("/v1/messages", headers=bob.headers)).json()["envelopes"]
    assert [x["client_message_id"] for x in stored] == ["f1"] and stored[0]["franking_tag"]


async def test_malformed_send_frame_gets_stream_error_and_the_connection_goes_on(live: Live) -> None:  # noqa: F811
    alice, bob = await live.person("alice"), await live.person("bob")
    async with live.stream(alice.headers) as wa:
        for bad in (msgspec.msgpack.encode(["send", 1]),
                    msgspec.msgpack.encode(["send", "c", "NOT A HANDLE", [], [], b""]),
                    msgspec.msgpack.encode(["send", "c", "bob", [["bob", "D", 999, b"x"]], [], b""])):
            await wa.send(bad)
            err = await until(wa, StreamError)
            assert isinstance(err, StreamError) and err.code == "bad_frame"
        await wa.send(send_frame([bob], "fine"))
        assert ok(await until(wa, SendResult))


async def test_order_per_device_holds_under_many_concurrent_senders(live: Live) -> None:  # noqa: F811
    senders, per = 8, 60
    bob = await live.person("bob")
    people = [await live.person(f"sender{i}") for i in range(senders)]
    received: list[tuple[str, int]] = []
    async with live.stream(bob.headers) as wb:
        await until(wb, QueueEmpty)

        async def burst(i: int, me: Dev) -> None:
            async with live.stream(me.headers) as ws:
                for n in range(per):  # pipelined: no waiting for answers in between
                    await ws.send(send_frame([bob], f"{i}-{n}", body=f"{i}:{n}".encode()))
                answers = [await until(ws, SendResult) for _ in range(per)]
                assert all(ok(a) for a in answers)
                assert [a.client_message_id for a in answers if isinstance(a, SendResult)] == [
                    f"{i}-{n}" for n in range(per)]

        await asyncio.gather(*(burst(i, p) for i, p in enumerate(people)))
        ids: list[int] = []
        while len(received) < senders * per:
            got = await until(wb, Deliver)
            assert isinstance(got, Deliver)
            for e in got.envelopes:
                a, b = e.body.decode().split(":")
                received.append((a, int(b)))
                ids.append(e.id)
            await wb.send(encode_frame(Ack(ids=[e.id for e in got.envelopes])))
        await quiet(wb)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for i in range(senders):
        assert [n for s, n in received if s == str(i)] == list(range(per))



async def test_sends_frame_carries_several_messages_each_answered(live: Live) -> None:  # noqa: F811
    alice, bob = await live.person("alice"), await live.person("bob")
    async with live.stream(alice.headers) as wa, live.stream(bob.headers) as wb:
        await until(wb, QueueEmpty)
        many = [msgspec.msgpack.decode(send_frame([bob], f"s{n}", body=b"%d" % n), type=Send) for n in range(40)]
        bad = Send("bad", "nobody_here", [], [], b"")
        await wa.send(encode_frame(Sends([*many[:20], bad, *many[20:]])))
        answers = [await until(wa, SendResult) for _ in range(41)]
        by_id = {a.client_message_id: a for a in answers if isinstance(a, SendResult)}
        assert set(by_id) == {f"s{n}" for n in range(40)} | {"bad"}
        assert all(by_id[f"s{n}"].ok for n in range(40))
        assert not by_id["bad"].ok and by_id["bad"].error == "unknown_user"
        bodies: list[bytes] = []
        while len(bodies) < 40:
            got = await until(wb, Deliver)
            assert isinstance(got, Deliver)
            bodies += [e.body for e in got.envelopes]
            await wb.send(encode_frame(Ack([e.id for e in got.envelopes])))
        assert bodies == [b"%d" % n for n in range(40)]  # the frame's order is the delivery order
        await quiet(wb)
        await wa.send(encode_frame(Sends([])))  # empty: malformed, and the stream goes on
        err = await until(wa, StreamError)
        assert isinstance(err, StreamError) and err.code == "bad_frame"
        await wa.send(send_frame([bob], "after"))
        assert ok(await until(wa, SendResult))
