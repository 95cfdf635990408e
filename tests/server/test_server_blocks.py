"""Blocking (secret and regular), regular-thread media, events and unsend, word-list flagging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tests.server.api_fixtures import Api, make_config, running_app
from tests.server.server_helpers import FakeClock, Person
from tests.server.test_server_api import assert_error
from veil.protocol.encoding import b64decode
from veil.protocol.payload import RegularMessage, decode_regular


@pytest.fixture
async def api(tmp_path: Path, fresh_db: str) -> AsyncIterator[Api]:
    words = tmp_path / "words.txt"
    words.write_text("# reviewed weekly\nscam\nbuy now\n\n", encoding="utf-8")
    clock = FakeClock()
    async with running_app(make_config(tmp_path, fresh_db, word_list=words), clock) as client:
        yield Api(client, clock)


async def secret(api: Api, sender: Person, recipient: str, envelopes: list[tuple[str, str]],
                 cmid: str) -> Any:
    return await api.c.post("/v1/messages", headers=sender.auth(), json={
        "client_message_id": cmid, "recipient": recipient, "skipped": [],
        "envelopes": [{"handle": h, "device_id": d, "olm_type": 1, "body": "AAAA"} for h, d in envelopes]})


async def inbox(api: Api, who: Person, i: int = 0) -> list[dict[str, Any]]:
    envs: list[dict[str, Any]] = (await api.c.get("/v1/messages", headers=who.auth(i))).json()["envelopes"]
    ids = [e["id"] for e in envs]
    await api.c.post("/v1/messages/ack", headers=who.auth(i), json={"ids": ids})
    return envs


def regulars(envs: list[dict[str, Any]]) -> list[RegularMessage]:
    return [decode_regular(b64decode(e["body"])) for e in envs]


async def say(api: Api, sender: Person, to: str, text: str, cmid: str, **extra: Any) -> Any:
    return await api.c.post(f"/v1/threads/{to}/messages", headers=sender.auth(),
                            json={"client_message_id": cmid, "text": text, **extra})


async def history(api: Api, who: Person, peer: str) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = (await api.c.get(f"/v1/threads/{peer}/messages",
                                                  headers=who.auth())).json()["messages"]
    return msgs


async def test_block_list(api: Api) -> None:
    alice = await api.person("alice")
    await api.person("bob")
    await api.person("carol")
    assert (await api.c.put("/v1/blocks/carol", headers=alice.auth())).json() == {"blocked": ["carol"]}
    assert (await api.c.put("/v1/blocks/bob", headers=alice.auth())).json() == {"blocked": ["bob", "carol"]}
    assert (await api.c.put("/v1/blocks/bob", headers=alice.auth())).status_code == 200  # idempotent
    assert (await api.c.delete("/v1/blocks/carol", headers=alice.auth())).json() == {"blocked": ["bob"]}
    assert (await api.c.get("/v1/blocks", headers=alice.auth())).json() == {"blocked": ["bob"]}
    assert_error(await api.c.put("/v1/blocks/alice", headers=alice.auth()), 400, "cannot_block_self")
    assert_error(await api.c.put("/v1/blocks/nobody", headers=alice.auth()), 404, "unknown_user")


async def test_blocked_secret_envelopes_are_dropped_silently(api: Api) -> None:
    alice, bob = await api.person("alice", devices=2), await api.person("bob")
    everyone = [("bob", bob.device_id()), ("alice", alice.device_id(1))]
    await api.c.put("/v1/blocks/alice", headers=bob.auth())
    r = await secret(api, alice, "bob", everyone, "while-blocked")
    assert r.status_code == 200 and r.json()["count"] == 2  # looks like a normal send
    assert await inbox(api, bob) == []
    assert [e["client_message_id"] for e in await inbox(api, alice, 1)] == ["while-blocked"]
    # The device check still applies.
    r = await secret(api, alice, "bob", everyone[1:], "partial")
    assert_error(r, 409, "device_mismatch")
    # Bob can still write to alice.
    assert (await secret(api, bob, "alice", [("alice", alice.device_id(0)), ("alice", alice.device_id(1))],
                         "from-bob")).status_code == 200
    assert [e["client_message_id"] for e in await inbox(api, alice, 0)] == ["from-bob"]
    # Unblocking restores new messages only.
    await api.c.delete("/v1/blocks/alice", headers=bob.auth())
    assert (await secret(api, alice, "bob", everyone, "after")).status_code == 200
    assert [e["client_message_id"] for e in await inbox(api, bob)] == ["after"]


async def test_blocked_regular_messages_are_kept_from_the_blocker(api: Api) -> None:
    alice, bob, carol = await api.person("alice"), await api.person("bob"), await api.person("carol")
    first = (await say(api, alice, "bob", "hello", "r1")).json()["message_id"]
    assert [m.text for m in regulars(await inbox(api, bob))] == ["hello"]
    await api.c.put("/v1/blocks/alice", headers=bob.auth())
    await api.c.put("/v1/blocks/carol", headers=bob.auth())
    hidden = await say(api, alice, "bob", "are you there?", "r2")
    assert hidden.status_code == 201
    assert await inbox(api, bob) == []
    assert [m["text"] for m in await history(api, bob, "alice")] == ["hello"]
    assert [m["text"] for m in await history(api, alice, "bob")] == ["hello", "are you there?"]
    r = await api.c.get("/v1/threads/alice/messages", params={"before": hidden.json()["message_id"]},
                        headers=bob.auth())
    assert_error(r, 404, "unknown_message")
    # Events from alice do not reach bob either.
    await api.c.post("/v1/threads/bob/events", headers=alice.auth(), json={"kind": "typing"})
    assert await inbox(api, bob) == []
    # A blocked person cannot start a thread.
    assert_error(await say(api, carol, "bob", "hi", "c1"), 403, "blocked")
    assert (await api.c.get("/v1/threads", headers=carol.auth())).json()["threads"] == []
    # Bob can still write to alice, and unblocking restores new messages only.
    assert (await say(api, bob, "alice", "stop", "b1")).status_code == 201
    await api.c.delete("/v1/blocks/alice", headers=bob.auth())
    await say(api, alice, "bob", "sorry", "r3")
    assert [m.text for m in regulars(await inbox(api, bob))] == ["sorry"]
    assert [m["text"] for m in await history(api, bob, "alice")] == ["hello", "stop", "sorry"]
    assert first == (await history(api, bob, "alice"))[0]["message_id"]


async def test_media_stickers_events_and_unsend(api: Api) -> None:
    alice, bob = await api.person("alice", devices=2), await api.person("bob")
    blob = (await api.c.post("/v1/blobs", headers=alice.auth(), content=b"jpeg bytes")).json()["blob_id"]
    attachment = {"blob_id": blob, "mime": "image/jpeg", "size": 10, "width": 4, "height": 3, "name": "a.jpg"}
    r = await say(api, alice, "bob", "", "m1", kind="image", attachment=attachment)
    assert r.status_code == 201, r.text
    picture = r.json()["message_id"]
    assert (await say(api, alice, "bob", "", "m2", kind="sticker", sticker="cats/3")).status_code == 201
    assert_error(await say(api, alice, "bob", "", "m3", kind="image"), 422, "invalid_request")
    assert_error(await say(api, alice, "bob", "", "m4", kind="sticker"), 422, "invalid_request")
    assert_error(await say(api, alice, "bob", "", "m5", kind="gif"), 422, "invalid_request")
    gone = {**attachment, "blob_id": "A" * 22}
    assert_error(await say(api, alice, "bob", "", "m6", kind="video", attachment=gone), 404, "unknown_blob")
    shown = await history(api, bob, "alice")
    assert [(m["kind"], m["sticker"]) for m in shown] == [("image", ""), ("sticker", "cats/3")]
    assert shown[0]["attachment"] == {**attachment, "duration_ms": 0}
    assert shown[1]["attachment"] is None
    got = regulars(await inbox(api, bob))
    assert got[0].kind == "image" and got[0].attachment is not None and got[0].attachment.blob_id == blob
    assert got[1].sticker == "cats/3"
    await inbox(api, alice, 1)
    # A read receipt is fanned out, never stored.
    r = await api.c.post("/v1/threads/alice/events", headers=bob.auth(), json={"kind": "read", "ref": picture})
    assert r.status_code == 200
    [receipt] = regulars(await inbox(api, alice, 0))
    assert (receipt.kind, receipt.ref, receipt.sender) == ("read", picture, "bob")
    assert len(regulars(await inbox(api, alice, 1))) == 1
    assert len(await history(api, alice, "bob")) == 2
    assert_error(await api.c.post("/v1/threads/alice/events", headers=bob.auth(), json={"kind": "text"}), 422,
                 "invalid_request")
    # Unsend: the sender only, within 24 hours; every device of both hears of it.
    url = f"/v1/threads/bob/messages/{picture}/unsend"
    assert_error(await api.c.post(f"/v1/threads/alice/messages/{picture}/unsend", headers=bob.auth()), 403,
                 "not_yours")
    assert (await api.c.post(url, headers=alice.auth())).status_code == 200
    assert [m["kind"] for m in await history(api, bob, "alice")] == ["sticker"]
    for who, i in ((bob, 0), (alice, 0), (alice, 1)):
        [notice] = regulars(await inbox(api, who, i))
        assert (notice.kind, notice.ref) == ("unsend", picture)
    assert_error(await api.c.post(url, headers=alice.auth()), 404, "unknown_message")
    late = (await say(api, alice, "bob", "oops", "m7")).json()["message_id"]
    api.clock.advance(24 * 3600 * 1000 + 1)
    assert_error(await api.c.post(f"/v1/threads/bob/messages/{late}/unsend", headers=alice.auth()), 409,
                 "unsend_window_over")


async def test_word_list_flags_regular_messages(api: Api) -> None:
    alice = await api.person("alice")
    await api.person("bob")
    for i, text in enumerate(["this is a SCAM!", "scampi for dinner", "Buy now, cheap", "buy nowhere"]):
        assert (await say(api, alice, "bob", text, f"w{i}")).status_code == 201
    app: FastAPI = api.c._transport.app  # type: ignore[attr-defined]
    flagged = await app.state.store.flagged_messages()
    assert [m.text for m in flagged] == ["this is a SCAM!", "Buy now, cheap"]
