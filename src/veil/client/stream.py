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
    Results,
    Send,
    SendResult,
    Sends,
    StreamError,
    decode_server_frame,
    encode_frame,
)

__all__ = ["StreamLink", "listen"]

log = logging.getLogger("veil.client.stream")

CLOSE_UNAUTHORIZED = 4401  # the server's close code for a revoked or unknown device token

_MAX_BATCH = 500  # envelopes of consecutive Deliver frames processed (and committed) together


class StreamLink:
    """An open stream the device can also send on: Send frames, answered by SendResult after commit."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending: dict[str, asyncio.Future[SendResult]] = {}
        self.closed = False

    async def transmit(self, frame: Send | Sends) -> None:
        """Put a frame on the wire without waiting for its answer (the outbox gets the answers)."""
        try:
            await self.ws.send(encode_frame(frame))
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            self.closed = True
            raise ServerUnavailable("the stream closed") from exc

    async def send(self, frame: Send, *, timeout: float = 15.0) -> SendResult:
        fut: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self.pending[frame.client_message_id] = fut
        try:
            await self.ws.send(encode_frame(frame))
            return await asyncio.wait_for(fut, timeout)
        except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
            raise ServerUnavailable("the stream closed before the server answered") from exc
        finally:
            self.pending.pop(frame.client_message_id, None)

    def resolve(self, result: SendResult) -> bool:
        fut = self.pending.get(result.client_message_id)
        if fut is not None and not fut.done():
            fut.set_result(result)
            return True
        return False

    def close(self) -> None:
        self.closed = True
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ServerUnavailable("the stream closed before the server answered"))


async def _session(device: Device, ws: ClientConnection, *, until_empty: bool) -> bool:
    """Serve one connection; True when the caller asked to stop at the end of the backlog.

    The reader never waits for the device lock: deliveries go to a processor task, and answers
    to sends go straight to the outbox (`Results` frames, several answers at once).
    """
    link = StreamLink(ws)
    queue: asyncio.Queue[Deliver | QueueEmpty | KeysLow | None] = asyncio.Queue()

    async def processor() -> bool:
        backlog: list[Deliver | QueueEmpty | KeysLow | None] = []  # taken from the queue, not yet handled
        while (item := backlog.pop(0) if backlog else await queue.get()) is not None:
            if isinstance(item, QueueEmpty):
                if until_empty:
                    return True
            elif isinstance(item, KeysLow):
                await device.publish_keys(item.one_time_keys)
            else:
                # Deliver frames that queued up while the last batch was processed go together:
                # one transaction and one Ack for all of them.
                envelopes = list(item.envelopes)
                while not queue.empty() and len(envelopes) < _MAX_BATCH:
                    nxt = queue.get_nowait()
                    if not isinstance(nxt, Deliver):
                        backlog.append(nxt)
                        break
                    envelopes += nxt.envelopes
                done = await device.process(envelopes)
                if done:
                    await ws.send(encode_frame(Ack(ids=done)))
                if len(done) < len(envelopes):
                    raise ServerUnavailable("could not process every envelope; reconnecting")
        return False

    async def reader() -> None:
        try:
            async for raw in ws:
                if isinstance(raw, str):
                    continue
                try:
                    frame = decode_server_frame(raw)
                except MalformedData:
                    log.warning("ignored a malformed frame from the server")
                    continue
                if isinstance(frame, SendResult):
                    if not link.resolve(frame):
                        device.outbox.on_result(frame)
                elif isinstance(frame, Results):
                    for result in frame.results:
                        if not link.resolve(result):
                            device.outbox.on_result(result)
                elif isinstance(frame, StreamError):
                    log.warning("server stream error: %s", frame.code)
                else:
                    queue.put_nowait(frame)
        finally:
            queue.put_nowait(None)

    device.stream_link = link
    device.outbox.link_opened()  # queued sends (and any left by an earlier run) go on this stream
    proc, read = asyncio.ensure_future(processor()), asyncio.ensure_future(reader())
    try:
        finished, _ = await asyncio.wait({proc, read}, return_when=asyncio.FIRST_COMPLETED)
        if proc in finished and proc.result():
            return True  # the backlog is drained, as asked
        result = await proc  # finish what was already received, then report how the reader ended
        await read  # raises how the connection closed (a close code such as 4401 included)
        return result
    finally:
        if device.stream_link is link:
            device.stream_link = None
        link.close()
        device.outbox.link_closed(link)
        for task in (proc, read):
            if not task.done():
                task.cancel()
        await asyncio.gather(proc, read, return_exceptions=True)


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
                else:
                    waiter = asyncio.ensure_future(stop.wait())
                    finished, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    if task not in finished:
                        task.cancel()
                        return
                    waiter.cancel()
                    if task.result():
                        return
            log.info("stream closed by the server; reconnecting in %.1fs", delay)
        except websockets.exceptions.InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise ServerRejected(exc.response.status_code, "unauthorized",
                                     "the server refused this device's token (revoked?)") from exc
            log.info("stream refused (%s); retrying", exc.response.status_code)
        except websockets.exceptions.ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == CLOSE_UNAUTHORIZED:
                # Revoked (or the token is unknown): reconnecting cannot help.
                raise ServerRejected(401, "unauthorized", exc.rcvd.reason or "the server refused this device's token"
                                     ) from exc
            log.info("stream lost; reconnecting in %.1fs", delay)
        except (TimeoutError, OSError, websockets.exceptions.WebSocketException, ServerUnavailable):
            log.info("stream lost; reconnecting in %.1fs", delay)
        if until_empty and stop is None and delay > max_backoff:
            raise ServerUnavailable("cannot reach the server's stream")
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, max_backoff * 2)
