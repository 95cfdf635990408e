"""The linking relay: the server passes opaque sealed blobs between two devices of one account.

Link states (one row each): created → requested (request set once) → answered (response set);
deleted or expired at any point. The server never sees the code's secret, so it cannot open
or forge what it relays (see veil.protocol.linking).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from veil.protocol.linking import LINK_ID_LEN
from veil.server.clock import Clock
from veil.server.errors import Conflict, Forbidden, NotFound
from veil.server.storage.base import DeviceRow, Duplicate, LinkRow, Store

__all__ = ["LINK_TTL_MS", "LinkService", "LinkView"]

log = logging.getLogger("veil.server.links")

LINK_TTL_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class LinkView:
    link_id: str
    ephemeral_key: str
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    expires_at: int


def new_link_id() -> str:
    # Uppercase base32: survives LinkCode.parse, which upper-cases and keeps letters and digits.
    return base64.b32encode(secrets.token_bytes(5)).decode("ascii")[:LINK_ID_LEN]


def _view(row: LinkRow) -> LinkView:
    return LinkView(link_id=row.link_id, ephemeral_key=row.ephemeral_key,
                    request=json.loads(row.request_json) if row.request_json else None,
                    response={"ciphertext": row.response_ciphertext} if row.response_ciphertext else None,
                    expires_at=row.expires_at)


class LinkService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(self, device: DeviceRow, ephemeral_key: str) -> LinkView:
        expires = self._clock.now_ms() + LINK_TTL_MS
        for _ in range(5):
            row = LinkRow(link_id=new_link_id(), handle=device.handle, creator_device=device.device_id,
                          ephemeral_key=ephemeral_key, request_json=None, response_ciphertext=None,
                          expires_at=expires)
            try:
                await self._store.create_link(row)
            except Duplicate:
                continue
            log.info("link created by %s/%s", device.handle, device.device_id)
            return _view(row)
        raise Conflict("could not allocate a link id; try again", "link_id_collision")

    async def _get(self, device: DeviceRow, link_id: str) -> LinkRow:
        row = await self._store.get_link(link_id.upper())
        # Expired links and other accounts' links look exactly like missing ones.
        if row is None or row.handle != device.handle or row.expires_at <= self._clock.now_ms():
            raise NotFound("no such link (or it expired)", "unknown_link")
        return row

    async def get(self, device: DeviceRow, link_id: str) -> LinkView:
        return _view(await self._get(device, link_id))

    async def put_request(self, device: DeviceRow, link_id: str, ephemeral_key: str, ciphertext: str) -> None:
        row = await self._get(device, link_id)
        request = json.dumps({"ephemeral_key": ephemeral_key, "ciphertext": ciphertext,
                              "device_id": device.device_id})
        if not await self._store.set_link_request(row.link_id, request):
            raise Conflict("this link already has a request", "link_requested")

    async def put_response(self, device: DeviceRow, link_id: str, ciphertext: str) -> None:
        row = await self._get(device, link_id)
        if row.creator_device != device.device_id:
            raise Forbidden("only the device that created the link can answer it", "not_link_creator")
        if row.request_json is None:
            raise Conflict("this link has no request to answer yet", "link_not_requested")
        await self._store.set_link_response(row.link_id, ciphertext)

    async def delete(self, device: DeviceRow, link_id: str) -> None:
        row = await self._get(device, link_id)
        await self._store.delete_link(row.link_id)
