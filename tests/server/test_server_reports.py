"""Franking on secret envelopes (REST and stream) and abuse reports, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from tests.server.api_fixtures import Api, make_config, running_app
from tests.server.feature_helpers import (
    Franked,
    live_server,
    payload,
    received,
    send_franked,
    server_key,
    targets,
)
from tests.server.server_helpers import FakeClock, Person
from tests.server.test_server_api import assert_error
from veil.protocol.attachments import encrypt_bytes, new_attachment_key
from veil.protocol.encoding import b64encode
from veil.protocol.errors import FrankingInvalid
from veil.protocol.franking import check_commitment, new_franking_key, verify_tag
from veil.protocol.payload import Attachment, decode_payload, encode_payload
from veil.protocol.wire import Deliver, decode_server_frame


@pytest.fixture
async def api(tmp_path: Path, fresh_db: str) -> AsyncIterator[Api]:
    clock = FakeClock()
    async with running_app(make_config(tmp_path, fresh_db), clock) as client:
        yield Api(client, clock)


def app_of(api: Api) -> FastAPI:
    app: FastAPI = api.c._transport.app  # type: ignore[attr-defined]
    return app


async def test_envelopes_carry_a_verifiable_franking_tag(api: Api) -> None:
    alice, bob = await api.person("alice", devices=2), await api.person("bob", devices=2)
    p = payload(alice, "bob", "hello")
    data = await send_franked(api.c, alice, "bob", targets((bob, [0, 1]), (alice, [1])), p, "m1")
    key = await server_key(app_of(api))
    for who, i in ((bob, 0), (bob, 1), (alice, 1)):
        f = await received(api.c, who, i, data)
        assert f.server_ts == api.clock.now
        check_commitment(p.franking_key, data, f.commitment)
        verify_tag(key, f.franking_tag, f.commitment, "alice", alice.device_id(), who.handle, who.device_id(i),
                   f.server_ts)
        with pytest.raises(FrankingInvalid):  # bound to its own recipient device
            verify_tag(key, f.franking_tag, f.commitment, "alice", alice.device_id(), who.handle,
                       who.device_id(1 - i), f.server_ts)
    # Without a commitment there is no tag; a commitment of the wrong size is refused.
    r = await api.c.post("/v1/messages", headers=alice.auth(), json={
        "client_message_id": "m2", "recipient": "bob", "skipped": [{"handle": "bob", "device_id": bob.device_id(1)},
                                                                    {"handle": "alice",
                                                                     "device_id": alice.device_id(1)}],
        "envelopes": [{"handle": "bob", "device_id": bob.device_id(), "olm_type": 1, "body": "AAAA"}]})
    assert r.status_code == 200
    last = (await api.c.get("/v1/messages", headers=bob.auth())).json()["envelopes"][-1]
    assert last["commitment"] == "" and last["franking_tag"] == ""
    r = await api.c.post("/v1/messages", headers=alice.auth(), json={
        "client_message_id": "m3", "recipient": "bob", "skipped": [], "commitment": b64encode(b"short"),
        "envelopes": []})
    assert_error(r, 400, "bad_commitment")


async def test_streamed_envelopes_carry_the_tag(tmp_path: Path, fresh_db: str) -> None:
    clock = FakeClock()
    async with live_server(make_config(tmp_path, fresh_db), clock) as (http, app):
        api = Api(http, clock)
        alice, bob = await api.person("alice"), await api.person("bob")
        p = payload(alice, "bob", "over the stream")
        data = await send_franked(http, alice, "bob", targets((bob, [0])), p, "s1")
        ws_url = str(http.base_url).replace("http://", "ws://") + "/v1/stream"
        async with connect(ws_url, additional_headers=bob.auth(), open_timeout=10) as ws:
            got = decode_server_frame(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[arg-type]
        assert isinstance(got, Deliver) and len(got.envelopes) == 1
        e = got.envelopes[0]
        check_commitment(p.franking_key, data, e.commitment)
        verify_tag(await server_key(app), e.franking_tag, e.commitment, "alice", alice.device_id(), "bob",
                   bob.device_id(), e.server_ts)


async def franked_pair(api: Api) -> tuple[Person, Person, Person, Franked]:
    alice, bob, carol = await api.person("alice"), await api.person("bob", devices=2), await api.person("carol")
    p = payload(alice, "bob", "you will regret this")
    data = await send_franked(api.c, alice, "bob", targets((bob, [0, 1])), p, "abuse")
    return alice, bob, carol, await received(api.c, bob, 0, data)


async def report(api: Api, who: Person, messages: list[dict[str, object]], peer: str = "alice") -> dict[str, object]:
    r = await api.c.post("/v1/reports", headers=who.auth(), json={"peer": peer, "secret": True,
                                                                   "reason": "threats", "messages": messages})
    return {"status": r.status_code, **r.json()}


async def test_secret_report_accepted_when_everything_checks(api: Api) -> None:
    _, bob, _, f = await franked_pair(api)
    got = await report(api, bob, [f.report_json()])
    assert got["status"] == 201 and got["verdict"] == "verified" and got["report_id"]
    stored = await app_of(api).state.store.list_reports()
    assert [(r.reporter, r.peer, r.kind) for r in stored] == [("bob", "alice", "secret")]
    assert "you will regret this" in stored[0].content_json


async def test_tampered_secret_reports_are_rejected(api: Api) -> None:
    _, bob, carol, f = await franked_pair(api)
    original = decode_payload(f.payload)
    altered = encode_payload(msgspec.structs.replace(original, body="you will enjoy this"))
    wrong_key = encode_payload(msgspec.structs.replace(original, franking_key=new_franking_key()))
    cases: list[tuple[str, dict[str, object], str]] = [
        ("altered payload", f.report_json(payload=b64encode(altered)), "commitment"),
        ("edited text, same key", f.report_json(payload=b64encode(f.payload.replace(b"regret", b"enjoy!"))),
         "commitment"),
        ("wrong franking key", f.report_json(payload=b64encode(wrong_key)), "commitment"),
        ("tag moved to another sender device", f.report_json(sender_device="AAAAAAAAAA"), "tag"),
        ("tag moved to another recipient device", f.report_json(recipient_device=bob.device_id(1)), "tag"),
        ("tag moved in time", f.report_json(server_ts=f.server_ts + 1), "tag"),
        ("forged tag", f.report_json(franking_tag=b64encode(bytes(32))), "tag"),
        ("not the recipient", f.report_json(recipient="carol"), "recipient"),
        ("sender is not the peer", f.report_json(sender="carol"), "sender"),
        ("payload is garbage", f.report_json(payload=b64encode(b"\x00garbage")), "payload"),
    ]
    for what, message, check in cases:
        got = await report(api, bob, [f.report_json(), message])
        assert got["status"] == 400, what
        assert got["error"]["code"] == "report_invalid", what  # type: ignore[index]
        assert got["error"]["message"].startswith("messages[1]: "), what  # type: ignore[index]
        assert (got["index"], got["failed"]) == (1, check), what
    # Carol cannot report a message that was franked for bob, even naming herself consistently.
    got = await report(api, carol, [f.report_json(recipient="carol")])
    assert got["status"] == 400 and got["failed"] == "tag"
    assert await app_of(api).state.store.list_reports() == []


async def test_payload_naming_another_sender_is_rejected(api: Api) -> None:
    alice, bob = await api.person("alice"), await api.person("bob")
    p = payload(alice, "bob", "signed, carol", claimed_sender="carol")
    data = await send_franked(api.c, alice, "bob", targets((bob, [0])), p, "spoof")
    got = await report(api, bob, [(await received(api.c, bob, 0, data)).report_json()])
    assert got["status"] == 400 and got["failed"] == "payload_sender"


async def upload(api: Api, who: Person, data: bytes) -> str:
    r = await api.c.post("/v1/blobs", headers=who.auth(), content=data)
    assert r.status_code == 201, r.text
    return str(r.json()["blob_id"])


async def test_attachment_report_needs_the_plaintext_that_encrypts_to_the_digest(api: Api) -> None:
    alice, bob = await api.person("alice"), await api.person("bob")
    picture = b"\x89PNG" + bytes(range(256)) * 300
    key = new_attachment_key()
    ciphertext = encrypt_bytes(key, picture)
    att = Attachment(blob_id="stored-elsewhere", mime="image/png", size=len(picture), key=key,
                     digest=hashlib.sha256(ciphertext).digest())
    p = payload(alice, "bob", "look", attachment=att)
    data = await send_franked(api.c, alice, "bob", targets((bob, [0])), p, "pic")
    f = await received(api.c, bob, 0, data)
    got = await report(api, bob, [f.report_json()])
    assert got["status"] == 400 and got["failed"] == "attachment"  # no plaintext given
    other = await upload(api, bob, picture[:-1] + b"\x00")
    got = await report(api, bob, [f.report_json(attachment_plaintext_blob_id=other)])
    assert got["status"] == 400 and got["failed"] == "attachment"
    assert "re-encrypt" in got["error"]["message"]  # type: ignore[index]
    theirs = await upload(api, alice, picture)
    got = await report(api, bob, [f.report_json(attachment_plaintext_blob_id=theirs)])
    assert got["status"] == 400 and got["failed"] == "attachment"
    right = await upload(api, bob, picture)
    got = await report(api, bob, [f.report_json(attachment_plaintext_blob_id=right)])
    assert got["status"] == 201, got
    [stored] = await app_of(api).state.store.list_reports()
    assert right in stored.content_json and "image/png" in stored.content_json


async def test_regular_reports_by_message_id(api: Api) -> None:
    alice, bob, carol = await api.person("alice"), await api.person("bob"), await api.person("carol")
    r = await api.c.post("/v1/threads/bob/messages", headers=alice.auth(),
                         json={"client_message_id": "r1", "text": "rude words"})
    mine = r.json()["message_id"]
    r = await api.c.post("/v1/threads/carol/messages", headers=alice.auth(),
                         json={"client_message_id": "r2", "text": "to carol"})
    elsewhere = r.json()["message_id"]
    r = await api.c.post("/v1/reports", headers=bob.auth(),
                         json={"peer": "alice", "secret": False, "reason": "rude", "message_ids": [mine]})
    assert r.status_code == 201 and r.json()["verdict"] == "verified"
    r = await api.c.post("/v1/reports", headers=bob.auth(), json={
        "peer": "alice", "secret": False, "reason": "x", "message_ids": [mine, elsewhere]})
    body = assert_error(r, 400, "report_invalid")
    assert body["index"] == 1
    r = await api.c.post("/v1/reports", headers=bob.auth(), json={"peer": "alice", "secret": False})
    assert_error(r, 422, "invalid_request")
    r = await api.c.post("/v1/reports", headers=carol.auth(), json={"peer": "alice", "secret": True,
                                                                    "messages": []})
    assert_error(r, 422, "invalid_request")
    [stored] = await app_of(api).state.store.list_reports()
    assert stored.kind == "regular" and "rude words" in stored.content_json
