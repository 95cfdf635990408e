"""Thin typed calls to the server's REST API (docs/api.md); errors become ClientErrors."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpcore
import httpx

from veil.client.errors import ServerRejected, ServerUnavailable

__all__ = ["BLOCK", "PIECE", "ServerAPI", "consume", "produce", "split"]

Json = dict[str, Any]
BLOCK = 1024 * 1024  # bytes per worker-thread step (read, seal or open, hash, write)
PIECE = 1024 * 1024  # bytes per HTTP body piece handed to the event loop (one h11 event each)

# httpcore reads at most 64 KiB per call; a 256 MiB download was then 4,096 trips through h11,
# httpcore and anyio on the event loop, the longest step of the download. The value is a bound on
# each read, not a buffer, so raising it process-wide costs nothing for small responses
# (bench/RESULTS.md, "What changed: attachments").
httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = 1024 * 1024


async def produce(step: Callable[[], list[bytes] | None], *, ahead: int = 2) -> AsyncGenerator[bytes, None]:
    """Yield the pieces `step` returns (run in a worker thread) until it returns None.

    Up to `ahead` steps run before their pieces are handed on, one after the other on one
    thread of their own (so they keep their order and may share buffers), while the event loop
    sends: reading and sealing a file overlap with sending it, and a step that is slow for a
    moment does not stall the upload. At most `ahead` + 1 steps' pieces are alive at a time.
    """
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veil-produce")
    pending: deque[asyncio.Future[list[bytes] | None]] = deque(
        loop.run_in_executor(worker, step) for _ in range(ahead))
    try:
        while (pieces := await pending.popleft()) is not None:
            pending.append(loop.run_in_executor(worker, step))
            for piece in pieces:
                yield piece
    finally:
        # Abandoned half way (close it with contextlib.aclosing), or done (the steps queued after
        # the end return None at once): a worker thread cannot be cancelled, so wait for the steps
        # still queued before the caller closes its files.
        with contextlib.suppress(BaseException):
            if pending:
                await asyncio.wait(pending)
        worker.shutdown(wait=False)


def split(data: bytes | bytearray | memoryview, size: int = 0) -> list[bytes]:
    """`data` as bytes pieces of at most `size` (default `PIECE`) bytes, for `produce`."""
    size = size or PIECE
    view = memoryview(data)
    return [bytes(view[i:i + size]) for i in range(0, len(view), size)]


async def consume(pieces: AsyncIterable[bytes], step: Callable[[memoryview], object], *,
                  block: int = BLOCK, ahead: int = 2) -> None:
    """Gather `pieces` into blocks of about `block` bytes and run `step` on each in a worker thread.

    Blocks are received while up to `ahead` earlier ones are processed (hashed, decrypted,
    written) one after the other on a thread of their own, in order. `step` sees every byte, in
    order, once, as a view that is only valid during the call. The pieces are joined in the
    worker thread into reused buffers: a fresh large buffer per block costs an mmap and its page
    faults.
    """
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veil-consume")
    pending: deque[asyncio.Future[object]] = deque()
    buffers = [bytearray() for _ in range(ahead + 1)]  # a buffer comes round only once its step is done
    turn = 0
    parts: list[bytes] = []
    size = 0
    try:
        async for piece in pieces:
            if not piece:
                continue
            parts.append(piece)
            size += len(piece)
            if size >= block:
                while len(pending) >= ahead:
                    await pending.popleft()
                pending.append(loop.run_in_executor(worker, _join_then, step, parts, buffers[turn]))
                turn = (turn + 1) % len(buffers)
                parts, size = [], 0
        while pending:
            await pending.popleft()
        if parts:
            await loop.run_in_executor(worker, _join_then, step, parts, buffers[turn])
    finally:
        if pending:  # a thread cannot be cancelled: let the steps finish before the caller cleans up
            with contextlib.suppress(BaseException):
                await asyncio.wait(pending)
        worker.shutdown(wait=False)


def _join_then(step: Callable[[memoryview], object], parts: list[bytes], buf: bytearray) -> object:
    size = sum(map(len, parts))
    if len(buf) < size:
        buf += bytes(size - len(buf))
    with memoryview(buf) as view:
        pos = 0
        for part in parts:
            view[pos:pos + len(part)] = part
            pos += len(part)
        with view[:size] as block:
            return step(block)


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
    async def upload_stream(self, body: AsyncIterable[bytes], size: int, *, downloads: int = 0,
                            max_age: int | None = None) -> Json:
        """Stream exactly `size` bytes from `body` to the server as an opaque blob.

        `body` may produce its bytes on the fly (an attachment sealed while it uploads); pieces of
        a few MiB keep the per-piece cost of the HTTP stack negligible.
        """
        params: dict[str, Any] = {"downloads": downloads}
        if max_age:
            params["max_age"] = max_age
        headers = {**self.auth_headers(), "Content-Type": "application/octet-stream",
                   "Content-Length": str(size)}
        try:
            resp = await self._http.post("/v1/blobs", content=body, params=params, headers=headers,
                                         timeout=None)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach the server at {self.base_url}: {exc}") from exc
        return self._result(resp, (201, 200))

    async def upload_blob(self, path: Path, *, downloads: int = 0, max_age: int | None = None) -> Json:
        """Stream a file to the server as an opaque blob (read ahead in a worker thread)."""
        size = path.stat().st_size
        with path.open("rb") as fh:
            async with contextlib.aclosing(produce(lambda: split(fh.read(BLOCK)) or None)) as body:
                return await self.upload_stream(body, size, downloads=downloads, max_age=max_age)

    @asynccontextmanager
    async def blob_stream(self, blob_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """The blob's bytes as they arrive off the socket (pieces of any size)."""
        try:
            async with self._http.stream("GET", f"/v1/blobs/{blob_id}", headers=self.auth_headers(),
                                         timeout=None) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    self._result(resp, (200,))
                yield resp.aiter_raw()
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"cannot reach the server at {self.base_url}: {exc}") from exc

    async def download_blob(self, blob_id: str, dest: Path) -> None:
        """Stream a blob into `dest` (overwritten); the file is written in a worker thread."""
        with dest.open("wb") as fh:
            async with self.blob_stream(blob_id) as pieces:
                await consume(pieces, fh.write)

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
