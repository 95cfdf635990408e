"""Pure ASGI middleware: a request-body size limit and a content-free access log."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veil.server.metrics import Metrics

__all__ = ["AccessLogMiddleware", "BodyLimitMiddleware"]

access_log = logging.getLogger("veil.server.access")


async def _send_413(send: Send, limit: int, *, close: bool) -> None:
    body = json.dumps({"error": {"code": "too_large",
                                 "message": f"the request body is larger than {limit} bytes"}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _discard(receive: Receive, budget: int) -> bool:
    """Read and drop the rest of a refused body; True if it ended within `budget` bytes.

    A client still uploading when the server answers and closes gets a connection reset
    instead of the 413, so moderately oversized bodies are drained before answering.
    """
    while budget >= 0:
        message = await receive()
        if message["type"] != "http.request":
            return False
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return budget >= 0
    return False


class BodyLimitMiddleware:
    """Answer 413 for bodies over `max_body` bytes, by Content-Length or by counting the stream.

    The body is read (up to the limit) before the app runs and then replayed, so a lying or
    absent Content-Length cannot push more than `max_body` bytes into memory. Paths equal to
    or under an `exempt` prefix (blob uploads, which stream to disk under their own limit)
    pass through untouched.
    """

    def __init__(self, app: ASGIApp, max_body: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_body = max_body
        self.exempt = exempt
        self.drain_limit = max(16 * 1024 * 1024, 4 * max_body)

    def _exempt(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.exempt)

    async def _refuse(self, receive: Receive, send: Send, remaining: int) -> None:
        drained = remaining <= self.drain_limit and await _discard(receive, self.drain_limit)
        await _send_413(send, self.max_body, close=not drained)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_body:
                    await self._refuse(receive, send, declared)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # Client went away before sending everything: let the app see the disconnect.
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                if message.get("more_body", False):
                    await self._refuse(receive, send, 0)
                else:
                    await _send_413(send, self.max_body, close=False)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False
        body = b"".join(chunks)

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class AccessLogMiddleware:
    """One line per request: method, path, status, duration. Never headers, query values or bodies.
    With `metrics`, HTTP latencies also go to a histogram labelled by route template (never the
    concrete path, which may name a handle)."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 0}

        async def watch(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "websocket.accept":
                status["code"] = 101
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            method = scope.get("method", "WS")
            elapsed = time.perf_counter() - start
            access_log.info("%s %s %s %.1fms", method, scope.get("path", ""), status["code"] or "-",
                            elapsed * 1000)
            if self.metrics is not None and scope["type"] == "http":
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self.metrics.request_seconds.labels(method, template).observe(elapsed)
