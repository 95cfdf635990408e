"""The HTTP API over the real app and a real database: contract shapes and error handling."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.server.api_fixtures import Api, make_config, running_app
from tests.server.server_helpers import FakeClock
from veil.protocol.encoding import b64decode
from veil.protocol.payload import decode_regular
from veil.protocol.wire import KIND_REGULAR, KIND_SECRET


@pytest.fixture
async def api(tmp_path: Path, fresh_db: str) -> AsyncIterator[Api]:
    clock = FakeClock()
    async with running_app(make_config(tmp_path, fresh_db), clock) as client:
        yield Api(client, clock)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body)


async def test_health_and_openapi(api: Api) -> None:
    assert (await api.c.get("/v1/health")).json() == {"status": "ok"}
    paths = (await api.c.get("/openapi.json")).json()["paths"]
    for p in ("/v1/accounts", "/v1/devices", "/v1/keys/claim", "/v1/messages", "/v1/devicelist",
              "/v1/threads/{handle}/messages", "/v1/links/{link_id}/request"):
        assert p in paths


async def test_malformed_json_and_wrong_types(api: Api) -> None:
    r = await api.c.post("/v1/accounts", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 400, "malformed_json")
    r = await api.c.post("/v1/accounts", json=[1, 2])
    assert_error(r, 400, "malformed_json")
    r = await api.c.post("/v1/accounts", json={"handle": 5, "display_name": "x", "password": "12345678",
                                               "identity_key": "k"})
    body = assert_error(r, 422, "invalid_request")
    assert "handle" in str(body["error"])
    r = await api.c.post("/v1/accounts", json={"handle": "alice", "display_name": "x",
                                               "password": "1234567890"})
    assert "identity_key" in str(assert_error(r, 422, "invalid_request")["error"])
    r = await api.c.post("/v1/accounts", json={"handle": "Alice!", "display_name": "x",
                                               "password": "12345678",
                                               "identity_key": "k"})
    assert "handle" in str(assert_error(r, 422, "invalid_request")["error"])
    r = await api.c.post("/v1/accounts", json={"handle": "alice", "display_name": "x", "password": "short",
                                               "identity_key": "k"})
    assert "password" in str(assert_error(r, 422, "invalid_request")["error"])
    r = await api.c.post("/v1/accounts", json={"handle": "alice", "display_name": "x", "password": "12345678",
                                               "identity_key": "not-a-key"})
    assert_error(r, 400, "bad_key")
    assert_error(await api.c.get("/v1/nowhere"), 404, "not_found")
    assert_error(await api.c.put("/v1/health"), 405, "method_not_allowed")


async def test_oversized_bodies_get_413(api: Api) -> None:
    big = b'{"handle": "' + b"a" * (64 * 1024 * 3) + b'"}'
    r = await api.c.post("/v1/accounts", content=big, headers={"content-type": "application/json"})
    assert_error(r, 413, "too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(10):
            yield b" " * (64 * 1024)

    r = await api.c.post("/v1/accounts", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "too_large")


async def test_register_login_and_auth(api: Api) -> None:
    alice = await api.person("alice", activate=False)
    r = await api.c.post("/v1/accounts", json={"handle": "alice", "display_name": "A", "password": "12345678",
                                               "identity_key": alice.identity.public_b64})
    assert_error(r, 409, "handle_taken")
    assert_error(await api.c.get("/v1/devices"), 401, "unauthorized")
    bad = {"Authorization": "Bearer nope"}
    assert_error(await api.c.get("/v1/devices", headers=bad), 401, "unauthorized")
    devices = (await api.c.get("/v1/devices", headers=alice.auth())).json()["devices"]
    assert [(d["device_id"], d["state"]) for d in devices] == [(alice.device_id(), "pending")]
    device_id = alice.device_id()
    assert len(device_id) == 10 and device_id.isalnum() and device_id.upper() == device_id
    assert len(alice.devices[0][1]) >= 43  # 32 random bytes, urlsafe base64


async def test_bad_logins_are_rate_limited(api: Api) -> None:
    alice = await api.person("alice", activate=False)
    keys = alice.devices[0][2]
    attempt = {"handle": "alice", "password": "wrong password", "device_name": "x",
               "curve25519": keys.curve25519, "ed25519": keys.ed25519}
    for _ in range(5):
        assert_error(await api.c.post("/v1/devices", json=attempt), 401, "bad_credentials")
    r = await api.c.post("/v1/devices", json={**attempt, "password": alice.password})
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1
    unknown = {**attempt, "handle": "nobody"}
    assert_error(await api.c.post("/v1/devices", json=unknown), 429, "rate_limited")  # same address
    api.clock.advance(61_000)
    assert (await api.c.post("/v1/devices", json={**attempt, "password": alice.password})).status_code == 201
    assert_error(await api.c.post("/v1/devices", json=unknown), 401, "bad_credentials")


async def test_unknown_user_is_404(api: Api) -> None:
    alice = await api.person("alice")
    assert_error(await api.c.get("/v1/users/nobody", headers=alice.auth()), 404, "unknown_user")
    r = await api.c.post("/v1/messages", headers=alice.auth(),
                         json={"client_message_id": "m", "recipient": "nobody", "envelopes": [],
                               "skipped": []})
    assert_error(r, 404, "unknown_user")
    r = await api.c.post("/v1/threads/nobody/messages", headers=alice.auth(),
                         json={"client_message_id": "m", "text": "hi"})
    assert_error(r, 404, "unknown_user")


async def test_keys_upload_claim_and_count(api: Api) -> None:
    alice = await api.person("alice")
    bob = await api.person("bob")
    bid, _, bkeys = bob.devices[0]
    otks = [bkeys.prekey("bob", bid, f"k{i}") for i in range(12)]
    fb = bkeys.prekey("bob", bid, "fb", fallback=True)
    bad = dict(otks[0], key_id="kx")  # signature was made for key id k0
    r = await api.c.put("/v1/keys", headers=bob.auth(), json={"one_time_keys": [bad], "fallback_key": None})
    assert_error(r, 400, "bad_signature")
    r = await api.c.put("/v1/keys", headers=bob.auth(), json={"one_time_keys": otks, "fallback_key": fb})
    assert r.json() == {"one_time_keys": 12}
    assert (await api.c.get("/v1/keys/count", headers=bob.auth())).json() == {"one_time_keys": 12,
                                                                               "fallback_key": True}
    too_many = [bkeys.prekey("bob", bid, f"z{i}") for i in range(101)]
    r = await api.c.put("/v1/keys", headers=bob.auth(), json={"one_time_keys": too_many})
    assert "one_time_keys" in str(assert_error(r, 422, "invalid_request")["error"])
    want = {"devices": [{"handle": "bob", "device_id": bid}, {"handle": "alice", "device_id": bid},
                        {"handle": "alice", "device_id": alice.device_id()}]}
    keys = (await api.c.post("/v1/keys/claim", headers=alice.auth(), json=want)).json()["keys"]
    assert len(keys) == 1  # wrong-handle pair and keyless device are left out
    assert keys[0] == {"handle": "bob", "device_id": bid, "key_id": "k0", "key": otks[0]["key"],
                       "signature": otks[0]["signature"], "fallback": False}


async def test_device_list_rules(api: Api) -> None:
    alice = await api.person("alice", devices=2, activate=False)
    bob = await api.person("bob")
    info = (await api.c.get("/v1/users/alice", headers=bob.auth())).json()
    assert info["device_list"] is None and info["devices"] == []
    assert (await api.publish_list(alice, 1, only=[0])).json() == {"version": 1}
    assert_error(await api.publish_list(alice, 1), 409, "stale_version")
    # Signed by the wrong identity key.
    forged = await api.publish_list(alice.__class__(alice.handle, alice.password, bob.identity,
                                                    alice.devices), 2)
    assert_error(forged, 400, "bad_signature")
    # Another account's list.
    r = await api.c.put("/v1/devicelist", headers=bob.auth(),
                        json=(await api.c.get("/v1/users/alice", headers=bob.auth())).json()["device_list"])
    assert_error(r, 403, "wrong_handle")
    bob_dev = bob.devices[0]
    stranger = alice.__class__(alice.handle, alice.password, alice.identity, [alice.devices[0], bob_dev])
    assert_error(await api.publish_list(stranger, 2), 400, "unknown_device")
    assert (await api.publish_list(alice, 2)).status_code == 200
    info = (await api.c.get("/v1/users/alice", headers=bob.auth())).json()
    assert info["device_list"]["version"] == 2 and info["identity_key"] == alice.identity.public_b64
    assert sorted(d["device_id"] for d in info["devices"]) == sorted(d for d, _, _ in alice.devices)
    assert {d["device_id"]: d["curve25519"] for d in info["device_list"]["devices"]} == {
        d: k.curve25519 for d, _, k in alice.devices}


async def test_send_checks_devices_then_stores_once(api: Api) -> None:
    alice = await api.person("alice", devices=2)
    bob = await api.person("bob", devices=2)
    pending_bob = await api.add_device(bob)  # not in the signed list: not expected
    a1, a2 = alice.device_id(0), alice.device_id(1)
    b1, b2 = bob.device_id(0), bob.device_id(1)

    def env(h: str, d: str, body: bytes = b"\x01secret") -> dict[str, object]:
        return {"handle": h, "device_id": d, "olm_type": 0, "body": b64(body)}

    batch = {"client_message_id": "m-1", "recipient": "bob",
             "envelopes": [env("bob", b1), env("bob", pending_bob)], "skipped": []}
    r = await api.c.post("/v1/messages", headers=alice.auth(), json=batch)
    body = assert_error(r, 409, "device_mismatch")
    assert body["missing"] == sorted([{"handle": "bob", "device_id": b2},
                                      {"handle": "alice", "device_id": a2}],
                                     key=lambda x: (x["handle"], x["device_id"]))
    assert body["stale"] == [{"handle": "bob", "device_id": pending_bob}]
    # b2 is skipped (untrusted by the sender): the rest must be exact.
    batch = {"client_message_id": "m-1", "recipient": "bob",
             "envelopes": [env("bob", b1), env("alice", a2)], "skipped": [{"handle": "bob", "device_id": b2}]}
    r = await api.c.post("/v1/messages", headers=alice.auth(), json=batch)
    assert r.status_code == 200, r.text
    assert r.json() == {"server_ts": api.clock.now, "count": 2}
    api.clock.advance(5)
    again = await api.c.post("/v1/messages", headers=alice.auth(), json=batch)
    assert again.json() == r.json()  # idempotent: same answer, nothing new stored
    got = (await api.c.get("/v1/messages", headers=bob.auth(0))).json()
    assert got["more"] is False and len(got["envelopes"]) == 1
    e = got["envelopes"][0]
    assert (e["kind"], e["sender"], e["sender_device"], e["client_message_id"]) == (KIND_SECRET, "alice", a1,
                                                                                    "m-1")
    assert b64decode(e["body"]) == b"\x01secret"
    assert (await api.c.get("/v1/messages", headers=bob.auth(1))).json()["envelopes"] == []
    # Ack: only own envelopes are deleted.
    assert (await api.c.post("/v1/messages/ack", headers=alice.auth(1), json={"ids": [e["id"]]})).json() == \
        {"deleted": 0}
    assert (await api.c.post("/v1/messages/ack", headers=bob.auth(0), json={"ids": [e["id"]]})).json() == \
        {"deleted": 1}
    assert (await api.c.get("/v1/messages", headers=bob.auth(0))).json()["envelopes"] == []
    huge = [env("bob", b1, b"x" * 70000)]
    r = await api.c.post("/v1/messages", headers=alice.auth(),
                         json={**batch, "client_message_id": "m-2", "envelopes": huge})
    assert r.status_code in (413, 422)
    r = await api.c.post("/v1/messages", headers=alice.auth(), json={**batch, "client_message_id": "m-3",
                                                                      "envelopes": [env("bob", b1)] * 2})
    assert_error(r, 400, "duplicate_device")


async def test_fetch_pages(api: Api) -> None:
    alice = await api.person("alice")
    bob = await api.person("bob")
    for i in range(5):
        r = await api.c.post("/v1/messages", headers=alice.auth(), json={
            "client_message_id": f"m{i}", "recipient": "bob", "skipped": [],
            "envelopes": [{"handle": "bob", "device_id": bob.device_id(), "olm_type": 1, "body": b64(b"c")}]})
        assert r.status_code == 200
    page = (await api.c.get("/v1/messages", params={"limit": 3}, headers=bob.auth())).json()
    assert page["more"] is True and [e["client_message_id"] for e in page["envelopes"]] == ["m0", "m1", "m2"]
    assert_error(await api.c.get("/v1/messages", params={"limit": 0}, headers=bob.auth()), 422,
                 "invalid_request")


async def test_regular_threads(api: Api) -> None:
    alice = await api.person("alice", devices=2)
    bob = await api.person("bob")
    pending = await api.add_device(bob)
    ids = []
    for i in range(5):
        api.clock.advance(1000)
        sender, other = (alice, "bob") if i % 2 == 0 else (bob, "alice")
        r = await api.c.post(f"/v1/threads/{other}/messages", headers=sender.auth(),
                             json={"client_message_id": f"c{i}", "text": f"hello {i}"})
        assert r.status_code == 201, r.text
        assert r.json()["server_ts"] == api.clock.now
        ids.append(r.json()["message_id"])
    retry = await api.c.post("/v1/threads/bob/messages", headers=alice.auth(),
                             json={"client_message_id": "c0", "text": "hello 0"})
    assert retry.status_code == 201 and retry.json()["message_id"] == ids[0]
    page = (await api.c.get("/v1/threads/alice/messages", params={"limit": 2}, headers=bob.auth())).json()
    assert [m["text"] for m in page["messages"]] == ["hello 3", "hello 4"] and page["more"]
    page = (await api.c.get("/v1/threads/alice/messages", params={"limit": 2, "before": ids[3]},
                            headers=bob.auth())).json()
    assert [m["message_id"] for m in page["messages"]] == ids[1:3] and page["more"]
    page = (await api.c.get("/v1/threads/bob/messages", params={"before": ids[1]},
                            headers=alice.auth())).json()
    assert [m["message_id"] for m in page["messages"]] == ids[:1] and not page["more"]
    assert page["messages"][0]["sender_device"] == alice.device_id()
    r = await api.c.get("/v1/threads/bob/messages", params={"before": "nope"}, headers=alice.auth())
    assert_error(r, 404, "unknown_message")
    threads = (await api.c.get("/v1/threads", headers=alice.auth())).json()["threads"]
    assert threads == [{"peer": "bob", "last_ts": api.clock.now}]
    # Fan-out: every device of both people but the sending one, pending devices included.
    boxes = {}
    for person, i in ((alice, 0), (alice, 1), (bob, 0)):
        got = await api.c.get("/v1/messages", headers=person.auth(i))
        boxes[(person.handle, i)] = got.json()["envelopes"]
    pending_tok = {"Authorization": f"Bearer {bob.devices[1][1]}"}
    assert bob.devices[1][0] == pending
    boxes[("bob", 1)] = (await api.c.get("/v1/messages", headers=pending_tok)).json()["envelopes"]
    assert len(boxes[("alice", 0)]) == 2  # bob's two messages, not alice's own three
    assert len(boxes[("alice", 1)]) == 5 and len(boxes[("bob", 0)]) == 3 and len(boxes[("bob", 1)]) == 5
    first = boxes[("bob", 0)][0]
    assert first["kind"] == KIND_REGULAR
    msg = decode_regular(b64decode(first["body"]))
    assert (msg.message_id, msg.sender, msg.to, msg.text, msg.client_message_id) == (ids[0], "alice", "bob",
                                                                                    "hello 0", "c0")
    r = await api.c.post("/v1/threads/bob/messages", headers=alice.auth(),
                         json={"client_message_id": "x", "text": ""})
    assert_error(r, 422, "invalid_request")


async def test_linking_relay(api: Api) -> None:
    alice = await api.person("alice")
    bob = await api.person("bob")
    new = await api.add_device(alice)
    r = await api.c.post("/v1/links", headers=alice.auth(0), json={"ephemeral_key": "EPH_A"})
    assert r.status_code == 201
    link_id = r.json()["link_id"]
    assert len(link_id) == 8 and r.json()["expires_at"] == api.clock.now + 600_000
    assert_error(await api.c.get(f"/v1/links/{link_id}", headers=bob.auth()), 404, "unknown_link")
    view = (await api.c.get(f"/v1/links/{link_id}", headers=alice.auth(1))).json()
    assert view["ephemeral_key"] == "EPH_A" and view["request"] is None and view["response"] is None
    r = await api.c.put(f"/v1/links/{link_id}/response", headers=alice.auth(0), json={"ciphertext": "early"})
    assert_error(r, 409, "link_not_requested")
    req = {"ephemeral_key": "EPH_B", "ciphertext": "SEALED_REQ"}
    r = await api.c.put(f"/v1/links/{link_id}/request", headers=alice.auth(1), json=req)
    assert r.status_code == 200
    assert_error(await api.c.put(f"/v1/links/{link_id}/request", headers=alice.auth(1), json=req), 409,
                 "link_requested")
    view = (await api.c.get(f"/v1/links/{link_id}", headers=alice.auth(0))).json()
    assert view["request"] == {"ephemeral_key": "EPH_B", "ciphertext": "SEALED_REQ", "device_id": new}
    r = await api.c.put(f"/v1/links/{link_id}/response", headers=alice.auth(1), json={"ciphertext": "x"})
    assert_error(r, 403, "not_link_creator")
    r = await api.c.put(f"/v1/links/{link_id}/response", headers=alice.auth(0), json={"ciphertext": "SEALED"})
    assert r.status_code == 200
    view = (await api.c.get(f"/v1/links/{link_id}", headers=alice.auth(1))).json()
    assert view["response"] == {"ciphertext": "SEALED"}
    assert (await api.c.delete(f"/v1/links/{link_id}", headers=alice.auth(0))).status_code == 200
    assert_error(await api.c.get(f"/v1/links/{link_id}", headers=alice.auth(1)), 404, "unknown_link")
    other = (await api.c.post("/v1/links", headers=alice.auth(0), json={"ephemeral_key": "E"})).json()
    api.clock.advance(600_001)
    assert_error(await api.c.get(f"/v1/links/{other['link_id']}", headers=alice.auth(0)), 404, "unknown_link")


async def test_revoke_and_identity_reset(api: Api) -> None:
    alice = await api.person("alice", devices=3)
    bob = await api.person("bob")
    assert_error(await api.c.delete(f"/v1/devices/{bob.device_id()}", headers=alice.auth()), 404,
                 "unknown_device")
    r = await api.c.delete(f"/v1/devices/{alice.device_id(2)}", headers=alice.auth())
    assert r.json() == {"revoked": alice.device_id(2)}
    assert_error(await api.c.get("/v1/devices", headers=alice.auth(2)), 401, "unauthorized")
    new_identity = alice.identity.__class__.generate()
    r = await api.c.put("/v1/identity", headers=alice.auth(1),
                        json={"password": "wrong password", "identity_key": new_identity.public_b64})
    assert_error(r, 401, "bad_credentials")
    r = await api.c.put("/v1/identity", headers=alice.auth(1),
                        json={"password": alice.password, "identity_key": new_identity.public_b64})
    assert r.status_code == 200, r.text
    assert_error(await api.c.get("/v1/devices", headers=alice.auth(0)), 401, "unauthorized")
    info = (await api.c.get("/v1/users/alice", headers=bob.auth())).json()
    assert info["identity_key"] == new_identity.public_b64
    assert info["device_list"] is None and info["devices"] == []
