"""An in-process app (httpx over ASGITransport, lifespan run by hand) and account helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.server.server_helpers import DeviceKeys, FakeClock, Person, signed_list_json
from veil.protocol.keys import IdentityKeyPair
from veil.server.app import build_app
from veil.server.config import ServerConfig


def make_config(tmp_path: Path, db_url: str, **over: Any) -> ServerConfig:
    base: dict[str, Any] = {"data_dir": tmp_path, "db_url": db_url, "argon2_time_cost": 1,
                            "argon2_memory_kib": 1024, "max_body": 64 * 1024 * 3}
    base.update(over)
    return ServerConfig(**base)


@asynccontextmanager
async def running_app(config: ServerConfig, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(config, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://veil.test") as client:
            yield client


class Api:
    def __init__(self, client: httpx.AsyncClient, clock: FakeClock) -> None:
        self.c = client
        self.clock = clock

    async def person(self, handle: str, devices: int = 1, *, activate: bool = True) -> Person:
        p = Person(handle=handle, password="correct horse", identity=IdentityKeyPair.generate())
        r = await self.c.post("/v1/accounts", json={"handle": handle, "display_name": handle.title(),
                                                    "password": p.password,
                                                    "identity_key": p.identity.public_b64})
        assert r.status_code == 201, r.text
        for _ in range(devices):
            await self.add_device(p)
        if activate:
            await self.publish_list(p, 1)
        return p

    async def add_device(self, p: Person) -> str:
        keys = DeviceKeys()
        r = await self.c.post("/v1/devices", json={"handle": p.handle, "password": p.password,
                                                   "device_name": f"dev{len(p.devices)}",
                                                   "curve25519": keys.curve25519, "ed25519": keys.ed25519})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["state"] == "pending"
        p.devices.append((body["device_id"], body["token"], keys))
        return str(body["device_id"])

    async def publish_list(self, p: Person, version: int, only: list[int] | None = None) -> httpx.Response:
        chosen = [p.devices[i] for i in (only if only is not None else range(len(p.devices)))]
        body = signed_list_json(p.identity, p.handle, version, [(d, k) for d, _, k in chosen])
        r = await self.c.put("/v1/devicelist", json=body, headers=p.auth())
        return r
