"""Helpers for the issue-3 server tests: a real uvicorn server, franked secret sends, blobs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.server.server_helpers import FakeClock, Person
from veil.protocol.encoding import b64decode, b64encode
from veil.protocol.franking import commit, new_franking_key
from veil.protocol.payload import Attachment, SecretPayload, encode_payload
from veil.server.app import build_app
from veil.server.config import ServerConfig
from veil.server.services.franking import FRANKING_SECRET

TIMEOUT = 10


@asynccontextmanager
async def live_server(config: ServerConfig, clock: FakeClock) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The app on a real uvicorn server in this loop; an httpx client pointed at it."""
    app = build_app(config, clock=clock)
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
            yield http, app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)


async def server_key(app: FastAPI) -> bytes:
    """The franking key the server keeps in its database (made on first use)."""
    key: bytes = await app.state.store.server_secret(FRANKING_SECRET, os.urandom(32))
    return key


@dataclass
class Franked:
    """A secret message as its recipient holds it after decrypting: what a report reveals."""

    payload: bytes
    commitment: bytes
    franking_tag: bytes
    sender: str
    sender_device: str
    recipient: str
    recipient_device: str
    server_ts: int

    def report_json(self, **over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "payload": b64encode(self.payload), "commitment": b64encode(self.commitment),
            "franking_tag": b64encode(self.franking_tag), "sender": self.sender,
            "sender_device": self.sender_device, "recipient": self.recipient,
            "recipient_device": self.recipient_device, "server_ts": self.server_ts}
        body.update(over)
        return body


def payload(sender: Person, to: str, text: str, *, franking_key: bytes | None = None, i: int = 0,
            attachment: Attachment | None = None, claimed_sender: str | None = None) -> SecretPayload:
    return SecretPayload(message_id=os.urandom(8).hex(), sender=claimed_sender or sender.handle,
                         sender_device=sender.device_id(i), to=to, sent_at=1, body=text,
                         franking_key=franking_key or new_franking_key(),
                         kind="image" if attachment else "text", attachment=attachment)


def targets(*people: tuple[Person, list[int]]) -> list[tuple[str, str]]:
    return [(p.handle, p.device_id(i)) for p, idx in people for i in idx]


async def send_franked(c: httpx.AsyncClient, sender: Person, recipient: str, to: list[tuple[str, str]],
                       p: SecretPayload, cmid: str, i: int = 0) -> bytes:
    """Send one (fake-ciphertext) envelope per target with the payload's commitment; return the
    payload bytes the recipients would decrypt."""
    data = encode_payload(p)
    body = {"client_message_id": cmid, "recipient": recipient, "skipped": [],
            "commitment": b64encode(commit(p.franking_key, data)),
            "envelopes": [{"handle": h, "device_id": d, "olm_type": 1, "body": b64encode(b"olm:" + data[:8])}
                          for h, d in to]}
    r = await c.post("/v1/messages", headers=sender.auth(i), json=body)
    assert r.status_code == 200, r.text
    return data


async def received(c: httpx.AsyncClient, who: Person, i: int, data: bytes) -> Franked:
    """The envelope `who`'s device i got for `data`, as a Franked record."""
    envs = (await c.get("/v1/messages", headers=who.auth(i))).json()["envelopes"]
    e = envs[-1]
    return Franked(payload=data, commitment=b64decode(e["commitment"]), franking_tag=b64decode(e["franking_tag"]),
                   sender=e["sender"], sender_device=e["sender_device"], recipient=who.handle,
                   recipient_device=who.device_id(i), server_ts=e["server_ts"])
