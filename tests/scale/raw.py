"""Raw REST/WebSocket clients for the scale tests: accounts and devices over REST, opaque
pre-made envelopes, streams that collect what they receive and acknowledge it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from tests.server.server_helpers import DeviceKeys, signed_list_json
from veil.protocol.encoding import b64encode
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.wire import Ack, Deliver, QueueEmpty, decode_server_frame, encode_frame

PASSWORD = "password1"


@dataclass
class Dev:
    handle: str
    device_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def person(http: httpx.AsyncClient, handle: str) -> Dev:
    """An account with one active device."""
    identity, keys = IdentityKeyPair.generate(), DeviceKeys()
    r = await http.post("/v1/accounts", json={"handle": handle, "display_name": handle, "password": PASSWORD,
                                              "identity_key": identity.public_b64})
    assert r.status_code == 201, r.text
    dev = await add_device(http, handle, keys)
    r = await http.put("/v1/devicelist", headers=dev.headers,
                       json=signed_list_json(identity, handle, 1, [(dev.device_id, keys)]))
    assert r.status_code == 200, r.text
    return dev


async def add_device(http: httpx.AsyncClient, handle: str, keys: DeviceKeys | None = None) -> Dev:
    keys = keys or DeviceKeys()
    r = await http.post("/v1/devices", json={"handle": handle, "password": PASSWORD, "device_name": "d",
                                             "curve25519": keys.curve25519, "ed25519": keys.ed25519})
    assert r.status_code == 201, r.text
    return Dev(handle, r.json()["device_id"], r.json()["token"])


def send_body(to: Dev, cmid: str, body: bytes) -> dict[str, object]:
    env = {"handle": to.handle, "device_id": to.device_id, "olm_type": 1, "body": b64encode(body)}
    return {"client_message_id": cmid, "recipient": to.handle, "skipped": [], "envelopes": [env]}


async def send(http: httpx.AsyncClient, sender: Dev, to: Dev, body: bytes, cmid: str | None = None) -> int:
    r = await http.post("/v1/messages", headers=sender.headers,
                        json=send_body(to, cmid or secrets.token_hex(8), body))
    return r.status_code


def binary(data: str | bytes) -> bytes:
    assert isinstance(data, bytes), "the stream sends binary frames"
    return data


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/stream"


@dataclass
class Collector:
    """Streams one device from a list of node URLs (the next one when a node dies), acknowledging
    every Deliver; `bodies` counts each envelope id once, `seen` every push (with redeliveries)."""

    dev: Dev
    urls: list[str]
    ack: bool = True
    bodies: dict[int, bytes] = field(default_factory=dict)
    pushes: int = 0
    empty: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    connects: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            url = self.urls[i % len(self.urls)]
            try:
                async with connect(ws_url(url), additional_headers=self.dev.headers, open_timeout=5,
                                   max_size=8 * 1024 * 1024) as ws:
                    self.connects += 1
                    await self._serve(ws, stop)
            except (OSError, TimeoutError, WebSocketException):
                i += 1
                await asyncio.sleep(0.1)

    async def _serve(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while True:
                recv = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({recv, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                        await recv
                    return
                raw = recv.result()
                if isinstance(raw, str):
                    continue
                frame = decode_server_frame(raw)
                if isinstance(frame, Deliver):
                    for e in frame.envelopes:
                        self.pushes += 1
                        self.bodies.setdefault(e.id, e.body)
                    self.arrived.set()
                    if self.ack:
                        await ws.send(encode_frame(Ack(ids=[e.id for e in frame.envelopes])))
                elif isinstance(frame, QueueEmpty):
                    self.empty.set()
        finally:
            stopper.cancel()


async def wait_for(predicate: object, timeout: float, step: float = 0.05) -> bool:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())
