"""The delivery stream: a WebSocket that pushes envelopes; the device acknowledges each batch
after it has stored it. Reconnects with jittered exponential back-off."""

from __future__ import annotations

import asyncio
import logging
import random

import websockets
from websockets.asyncio.client import ClientConnection, connect

from veil.client.device import Device
from veil.client.errors import ServerRejected, ServerUnavailable
from veil.protocol.errors import MalformedData
from veil.protocol.wire import (
    Ack,
    Deliver,
    KeysLow,
    QueueEmpty,
    StreamError,
    decode_server_frame,
    encode_frame,
)

__all__ = ["listen"]

log = logging.getLogger("veil.client.stream")


async def _session(device: Device, ws: ClientConnection, *, until_empty: bool) -> bool:
    """Serve one connection; True when the caller asked to stop at the end of the backlog."""
    async for raw in ws:
        if isinstance(raw, str):
            continue
        try:
            frame = decode_server_frame(raw)
        except MalformedData:
            log.warning("ignored a malformed frame from the server")
            continue
        if isinstance(frame, Deliver):
            done = await device.process(frame.envelopes)
            if done:
                await ws.send(encode_frame(Ack(ids=done)))
            if len(done) < len(frame.envelopes):
                raise ServerUnavailable("could not process every envelope; reconnecting")
        elif isinstance(frame, QueueEmpty):
            if until_empty:
                return True
        elif isinstance(frame, KeysLow):
            await device.publish_keys(frame.one_time_keys)
        elif isinstance(frame, StreamError):
            log.warning("server stream error: %s", frame.code)
    return False


async def listen(device: Device, *, until_empty: bool = False, stop: asyncio.Event | None = None,
                 max_backoff: float = 10.0) -> None:
    """Receive until `stop` is set (or, with `until_empty`, until the backlog is drained)."""
    delay = 0.2
    while stop is None or not stop.is_set():
        try:
            async with connect(device.api.stream_url, additional_headers=device.api.auth_headers(),
                               max_size=8 * 1024 * 1024, open_timeout=10) as ws:
                delay = 0.2
                task = asyncio.ensure_future(_session(device, ws, until_empty=until_empty))
                if stop is None:
                    if await task:
                        return
                    continue
                waiter = asyncio.ensure_future(stop.wait())
                finished, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if task in finished:
                    waiter.cancel()
                    if task.result():
                        return
                else:
                    task.cancel()
                    return
        except websockets.exceptions.InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise ServerRejected(exc.response.status_code, "unauthorized",
                                     "the server refused this device's token (revoked?)") from exc
            log.info("stream refused (%s); retrying", exc.response.status_code)
        except (TimeoutError, OSError, websockets.exceptions.WebSocketException, ServerUnavailable):
            log.info("stream lost; reconnecting in %.1fs", delay)
        if until_empty and stop is None and delay > max_backoff:
            raise ServerUnavailable("cannot reach the server's stream")
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, max_backoff * 2)
