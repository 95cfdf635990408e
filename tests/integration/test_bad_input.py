"""Tampered, replayed and malformed input: clear errors or visible notices, nothing else hurt."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.integration.people import drain, notices, register, texts
from veil.client.device import Device
from veil.client.errors import ServerRejected
from veil.protocol.encoding import b64encode
from veil.protocol.franking import commit, new_franking_key
from veil.protocol.payload import SecretPayload, encode_payload


async def _raw_secret(alice_device: Device, to: str, text: str, *, tamper: bool = False,
                      wrong_commitment: bool = False) -> dict[str, Any]:
    """Encrypt like the device does, optionally flipping one ciphertext byte, and post it."""
    peer = await alice_device.directory.get(to)
    entry = peer.devices[0]
    await alice_device.sessions.ensure(alice_device.api, [(to, entry)])
    payload = SecretPayload(message_id=uuid.uuid4().hex, sender=alice_device.handle,
                            sender_device=alice_device.device_id, to=to, sent_at=alice_device.clock(),
                            body=text, franking_key=new_franking_key())
    plaintext = encode_payload(payload)
    olm_type, body = alice_device.sessions.encrypt(entry.curve25519, plaintext)
    if tamper:
        body = body[:-5] + bytes([body[-5] ^ 0x01]) + body[-4:]
    batch = {"client_message_id": uuid.uuid4().hex, "recipient": to, "skipped": [],
             "commitment": b64encode(commit(payload.franking_key, plaintext + (b"x" if wrong_commitment else b""))),
             "envelopes": [{"handle": to, "device_id": entry.device_id, "olm_type": olm_type,
                            "body": b64encode(body)}]}
    await alice_device.api.send(batch)
    return batch


async def test_tampered_and_replayed_envelopes(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        await alice.send_text("bob", "first", secret=True)
        await _raw_secret(alice, "bob", "tampered", tamper=True)
        await alice.send_text("bob", "second", secret=True)
        replay = await _raw_secret(alice, "bob", "replayed once")
        await _raw_secret(alice, "bob", "commitment does not match", wrong_commitment=True)
        await drain(bob)
        # the same envelope again, as a replaying server (or network) would deliver it
        replay["client_message_id"] = uuid.uuid4().hex
        await alice.api.send(replay)
        await alice.send_text("bob", "third", secret=True)
        await drain(bob)
        thread = bob.messages("alice", secret=True)
        assert texts(thread) == ["first", "second", "replayed once", "third"]
        assert len(notices(thread, "decrypt_failed")) == 1
        assert len(notices(thread, "unverified_sender")) == 1  # the franking commitment did not match
        assert await bob.sync() == 0
    finally:
        await alice.close()
        await bob.close()


async def test_unknown_device_and_user_are_refused(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        with pytest.raises(ServerRejected) as info:
            await alice.api.send({"client_message_id": "x1", "recipient": "bob", "skipped": [], "envelopes": [
                {"handle": "bob", "device_id": "NOSUCHDEV0", "olm_type": 1, "body": "AAAA"}]})
        assert info.value.status == 409 and info.value.code == "device_mismatch"
        assert info.value.body["stale"] == [{"handle": "bob", "device_id": "NOSUCHDEV0"}]
        assert info.value.body["missing"] == [{"handle": "bob", "device_id": bob.device_id}]
        with pytest.raises(ServerRejected) as info:
            await alice.send_text("nobody_here", "hello?", secret=True)
        assert info.value.status == 404
        await alice.send_text("bob", "still fine", secret=True)
        await drain(bob)
        assert texts(bob.messages("alice", secret=True)) == ["still fine"]
    finally:
        await alice.close()
        await bob.close()


async def test_malformed_and_oversized_requests(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    headers = {"Authorization": f"Bearer {alice.api.token}", "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            cases = [
                ("POST", "/v1/messages", b"{not json"),
                ("POST", "/v1/messages", b'{"client_message_id": 5}'),
                ("POST", "/v1/accounts", b'{"handle": "A!", "display_name": "x", "password": "short",'
                                         b' "identity_key": "zz"}'),
                ("PUT", "/v1/keys", b'{"one_time_keys": "nope"}'),
                ("POST", "/v1/messages", b"x" * (2 * 1024 * 1024)),
                ("GET", "/v1/users/nobody_here", b""),
                ("POST", "/v1/keys/claim",
                 b'{"devices": [' + b",".join([b'{"handle":"a","device_id":"b"}'] * 500) + b"]}"),
            ]
            for method, path, body in cases:
                r = await http.request(method, path, content=body, headers=headers)
                assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])
                err = r.json()["error"]
                assert err["code"] and err["message"], (path, r.text[:200])
            r = await http.get("/v1/devices")
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
            # after all that, the server still works
            assert (await http.get("/v1/health")).status_code == 200
            assert (await http.get("/v1/devices", headers=headers)).status_code == 200
    finally:
        await alice.close()


async def test_twenty_concurrent_claims_never_share_a_key(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        before = await bob.api.key_count()
        results = await asyncio.gather(*[alice.api.claim([("bob", bob.device_id)]) for _ in range(20)])
        keys = [r[0] for r in results]
        one_time = [k["key_id"] for k in keys if not k["fallback"]]
        assert len(one_time) == len(set(one_time)) == min(20, before)
        assert await bob.api.key_count() == before - len(one_time)
    finally:
        await alice.close()
        await bob.close()
