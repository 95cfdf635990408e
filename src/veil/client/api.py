"""Thin typed calls to the server's REST API (docs/api.md); errors become ClientErrors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from veil.client.errors import ServerRejected, ServerUnavailable

__all__ = ["ServerAPI"]

Json = dict[str, Any]
_BLOCK = 256 * 1024


class ServerAPI:
    """One device's HTTP connection to its server."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def stream_url(self) -> str:
        if self.base_url.startswith("https://"):
            return "wss://" + self.base_url[len("https://"):] + "/v1/stream"
        return "ws://" + self.base_url.removeprefix("http://") + "/v1/stream"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(self, method: str, path: str, json: Json | None = None,
                   params: dict[str, Any] | None = None, *, ok: tuple[int, ...] = (200, 201)) -> Json:
        try:
            resp = await self._http.request(method, path, json=json, params=params,
                                            headers=self.auth_headers())
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach the server at {self.base_url}: {exc}") from exc
        return self._result(resp, ok)

    def _result(self, resp: httpx.Response, ok: tuple[int, ...]) -> Json:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {"value": body}
        if resp.status_code in ok:
            return body
        err = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = str(err.get("code", "http_error")) if err else "http_error"
        message = str(err.get("message", resp.reason_phrase)) if err else resp.reason_phrase
        if resp.status_code >= 500:
            raise ServerUnavailable(f"the server failed ({resp.status_code}): {message}")
        raise ServerRejected(resp.status_code, code, message, body)

    # -- accounts ----------------------------------------------------------------------------
    async def register(self, handle: str, display_name: str, password: str, identity_key: str) -> Json:
        return await self.call("POST", "/v1/accounts", {"handle": handle, "display_name": display_name,
                                                        "password": password, "identity_key": identity_key})

    async def login(self, handle: str, password: str, device_name: str, curve25519: str,
                    ed25519: str) -> Json:
        return await self.call("POST", "/v1/devices", {
            "handle": handle, "password": password, "device_name": device_name,
            "curve25519": curve25519, "ed25519": ed25519})

    async def devices(self) -> list[Json]:
        return list((await self.call("GET", "/v1/devices"))["devices"])

    async def revoke(self, device_id: str) -> Json:
        return await self.call("DELETE", f"/v1/devices/{device_id}")

    # -- keys --------------------------------------------------------------------------------
    async def upload_keys(self, one_time_keys: list[Json], fallback_key: Json | None) -> int:
        r = await self.call("PUT", "/v1/keys", {"one_time_keys": one_time_keys, "fallback_key": fallback_key})
        return int(r["one_time_keys"])

    async def key_count(self) -> int:
        return int((await self.call("GET", "/v1/keys/count"))["one_time_keys"])

    async def claim(self, devices: list[tuple[str, str]]) -> list[Json]:
        r = await self.call("POST", "/v1/keys/claim",
                            {"devices": [{"handle": h, "device_id": d} for h, d in devices]})
        return list(r["keys"])

    async def user(self, handle: str) -> Json:
        return await self.call("GET", f"/v1/users/{handle}")

    async def put_device_list(self, signed: Json) -> Json:
        return await self.call("PUT", "/v1/devicelist", signed)

    # -- mailboxes ---------------------------------------------------------------------------
    async def send(self, batch: Json) -> Json:
        return await self.call("POST", "/v1/messages", batch)

    async def fetch(self, limit: int = 100) -> Json:
        return await self.call("GET", "/v1/messages", params={"limit": limit})

    async def ack(self, ids: list[int]) -> Json:
        return await self.call("POST", "/v1/messages/ack", {"ids": ids})

    # -- blobs -------------------------------------------------------------------------------
    async def upload_blob(self, path: Path, *, downloads: int = 0, max_age: int | None = None) -> Json:
        """Stream a file to the server as an opaque blob."""

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as fh:
                while block := fh.read(_BLOCK):
                    yield block

        params: dict[str, Any] = {"downloads": downloads}
        if max_age:
            params["max_age"] = max_age
        headers = {**self.auth_headers(), "Content-Type": "application/octet-stream",
                   "Content-Length": str(path.stat().st_size)}
        try:
            resp = await self._http.post("/v1/blobs", content=chunks(), params=params, headers=headers,
                                         timeout=None)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach the server at {self.base_url}: {exc}") from exc
        return self._result(resp, (201, 200))

    async def download_blob(self, blob_id: str, dest: Path) -> None:
        """Stream a blob into `dest` (overwritten)."""
        try:
            async with self._http.stream("GET", f"/v1/blobs/{blob_id}", headers=self.auth_headers(),
                                         timeout=None) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    self._result(resp, (200,))
                with dest.open("wb") as fh:
                    async for block in resp.aiter_bytes(_BLOCK):
                        fh.write(block)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach the server at {self.base_url}: {exc}") from exc

    # -- regular threads ---------------------------------------------------------------------
    async def send_regular(self, handle: str, client_message_id: str, text: str) -> Json:
        return await self.call("POST", f"/v1/threads/{handle}/messages",
                               {"client_message_id": client_message_id, "text": text})

    async def history(self, handle: str, before: str | None = None, limit: int = 50) -> Json:
        params: dict[str, Any] = {"limit": limit}
        if before:
            params["before"] = before
        return await self.call("GET", f"/v1/threads/{handle}/messages", params=params)

    # -- linking -----------------------------------------------------------------------------
    async def create_link(self, ephemeral_key: str) -> Json:
        return await self.call("POST", "/v1/links", {"ephemeral_key": ephemeral_key})

    async def get_link(self, link_id: str) -> Json:
        return await self.call("GET", f"/v1/links/{link_id}")

    async def link_request(self, link_id: str, ephemeral_key: str, ciphertext: str) -> Json:
        return await self.call("PUT", f"/v1/links/{link_id}/request",
                               {"ephemeral_key": ephemeral_key, "ciphertext": ciphertext})

    async def link_response(self, link_id: str, ciphertext: str) -> Json:
        return await self.call("PUT", f"/v1/links/{link_id}/response", {"ciphertext": ciphertext})

    async def delete_link(self, link_id: str) -> Json:
        return await self.call("DELETE", f"/v1/links/{link_id}")
