"""WS /v1/stream: drain the mailbox on connect, then push live; Ack frames delete.

Two tasks per connection: a reader (Ack, Ping, bad frames) and a writer woken by the hub.
The writer re-reads the mailbox from the database on every wake and skips what it already
sent on this connection, so an envelope whose transaction committed late (PostgreSQL ids are
not commit-ordered) is still pushed. A client that stops acknowledging gets nothing more
once MAX_UNACKED envelopes are outstanding: memory per connection stays bounded.

Fast lane (Send and Sends frames): the reader hands each Send to `StreamSender` and each Ack
to the node's group writer without waiting for the commit; answers come back through the slot
(`results`; those ready together go out as one Results frame), and envelopes committed by the
group writer arrive in the slot's bounded `outbox`, so the writer task pushes them without a
database read. A database re-read (`mail`) always comes first and empties the outbox, which keeps
per-device order; the outbox only carries what was committed. At most MAX_INFLIGHT_SENDS Send
frames per connection wait for their answer; beyond that the
reader stops reading, and TCP pushes back on the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from veil.protocol.errors import MalformedData
from veil.protocol.wire import (
    Ack,
    Deliver,
    Envelope,
    KeysLow,
    Ping,
    QueueEmpty,
    Results,
    Send,
    SendResult,
    Sends,
    ServerFrame,
    StreamError,
    decode_client_frame,
    encode_frame,
)
from veil.server.errors import Unauthorized
from veil.server.hub import Hub, StreamSlot
from veil.server.services.accounts import AccountService
from veil.server.services.keys import KEYS_LOW, KeyService
from veil.server.services.mailbox import MailboxService
from veil.server.services.sends import StreamSender
from veil.server.services.writer import GroupWriter
from veil.server.storage.base import DeviceRow, EnvelopeRow

__all__ = ["CLOSE_UNAUTHORIZED", "stream_router"]

log = logging.getLogger("veil.server.stream")

CLOSE_UNAUTHORIZED = 4401
PAGE = 100  # envelopes per Deliver frame at most
MAX_FRAME_BODY = 512 * 1024  # and about this many body bytes, under clients' 1 MiB frame limit
MAX_UNACKED = 1000
MAX_INFLIGHT_SENDS = 1000  # Send frames of one connection waiting for their SendResult
READER_GRACE = 10.0  # seconds the reader may take to see the disconnect after the writer stops
_GONE = (WebSocketDisconnect, RuntimeError, OSError)  # the peer went away mid-send or mid-read


def _bearer(ws: WebSocket) -> str | None:
    value = ws.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _envelope(r: EnvelopeRow) -> Envelope:
    return Envelope(id=r.id, kind=r.kind, sender=r.sender, sender_device=r.sender_device,
                    server_ts=r.server_ts, olm_type=r.olm_type, body=r.body,
                    client_message_id=r.client_message_id, commitment=r.commitment,
                    franking_tag=r.franking_tag)


def _frames(envs: Sequence[Envelope]) -> list[Deliver]:
    frames: list[Deliver] = []
    batch: list[Envelope] = []
    size = 0
    for e in envs:
        if batch and (len(batch) >= PAGE or size + len(e.body) > MAX_FRAME_BODY):
            frames.append(Deliver(batch))
            batch, size = [], 0
        batch.append(e)
        size += len(e.body)
    if batch:
        frames.append(Deliver(batch))
    return frames


class _Connection:
    def __init__(self, ws: WebSocket, device: DeviceRow, slot: StreamSlot, mailbox: MailboxService,
                 keys: KeyService, recheck: float | None, sends: StreamSender | None = None,
                 group: GroupWriter | None = None) -> None:
        self.ws = ws
        self.sends = sends
        self.group = group
        self.inflight = 0  # Send frames read and not answered on the wire yet
        self._room = asyncio.Event()
        self.recheck = recheck
        self.device = device
        self.slot = slot
        self.mailbox = mailbox
        self.keys = keys
        self.sent: set[int] = set()  # pushed on this connection, not acknowledged yet
        self.capped = False  # the last drain stopped at MAX_UNACKED
        self._send_lock = asyncio.Lock()

    async def send(self, frame: ServerFrame) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(encode_frame(frame))

    async def drain(self) -> set[int]:
        """Push every envelope in the mailbox not yet sent on this connection; the ids read."""
        seen: set[int] = set()
        after = 0
        while len(self.sent) < MAX_UNACKED:
            rows = await self.mailbox.fetch_after(self.device.device_id, after, PAGE)
            if not rows:
                break
            after = rows[-1].id
            seen.update(r.id for r in rows)
            fresh = [_envelope(r) for r in rows if r.id not in self.sent][:MAX_UNACKED - len(self.sent)]
            for frame in _frames(fresh):
                await self.send(frame)
                self.sent.update(e.id for e in frame.envelopes)
                self.mailbox.delivered(len(frame.envelopes))
            if len(rows) < PAGE:
                # A full scan: forget ids acknowledged some other way (REST ack, purge).
                self.sent &= seen
                break
        self.capped = len(self.sent) >= MAX_UNACKED
        return seen

    async def push_outbox(self, skip: set[int]) -> None:
        """Send what the group writer committed for this device since the last re-read, in order."""
        box = self.slot.outbox
        fresh = [e for e in box if e.id not in skip and e.id not in self.sent]
        box.clear()
        room = MAX_UNACKED - len(self.sent)
        if len(fresh) > room:
            # Behind on acks: hold the rest back; the ack that makes room triggers a re-read.
            fresh = fresh[:max(room, 0)]
            self.capped = True
        for frame in _frames(fresh):
            await self.send(frame)
            self.sent.update(e.id for e in frame.envelopes)
            self.mailbox.delivered(len(frame.envelopes))

    async def send_results(self) -> None:
        while self.slot.results:
            results, self.slot.results = self.slot.results, []
            # Answers that were ready together travel together: one frame, one write.
            await self.send(results[0] if len(results) == 1 else Results(results))
            self.inflight -= len(results)
            self._room.set()

    def answer(self, result: SendResult) -> None:
        self.slot.results.append(result)
        self.slot.wake()

    async def writer(self) -> None:
        """Drain, then QueueEmpty (only once the whole backlog is out), then live until closed."""
        announced = False
        while True:
            if self.slot.close_code is not None:
                await self.ws.close(code=self.slot.close_code, reason="device revoked")
                return
            if self.slot.results:
                await self.send_results()
            seen: set[int] = set()
            if self.slot.mail:  # true at connect
                self.slot.mail = False  # cleared before reading, so a wake during the read is kept
                self.slot.outbox.clear()  # committed before this read: the read will find them
                seen = await self.drain()
            if self.slot.outbox and not self.capped:
                await self.push_outbox(seen)
            if not announced and not self.capped:
                announced = True
                await self.send(QueueEmpty())
                self.slot.keys_low = None  # superseded by the count read now
                count = await self.keys.count(self.device)
                if count.one_time_keys < KEYS_LOW:
                    await self.send(KeysLow(one_time_keys=count.one_time_keys))
            if announced and self.slot.keys_low is not None:
                n, self.slot.keys_low = self.slot.keys_low, None
                await self.send(KeysLow(one_time_keys=n))
            await self.slot.wait(self.recheck)

    async def reader(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                await self.send(StreamError("bad_frame", "frames are binary msgpack (veil.protocol.wire)"))
                continue
            try:
                frame = decode_client_frame(data)
            except MalformedData:
                await self.send(StreamError("bad_frame", "the frame could not be decoded"))
                continue
            if isinstance(frame, Send):
                await self.on_send(frame)
            elif isinstance(frame, Sends):
                for one in frame.sends:
                    await self.on_send(one)
            elif isinstance(frame, Ack):
                if self.group is None:
                    await self.mailbox.ack(self.device, frame.ids)
                    self.acked(frame.ids)
                else:
                    # Deleted in the next group commit; the ids leave `sent` only once the rows
                    # are gone, so a re-read meanwhile cannot push them again.
                    self.group.ack(self.device.device_id, frame.ids).add_done_callback(
                        functools.partial(self.group_acked, frame.ids))
            elif isinstance(frame, Ping):
                pass

    def group_acked(self, ids: list[int], f: asyncio.Future[int]) -> None:
        if f.cancelled() or f.exception() is not None:
            return  # not deleted: they stay in `sent` and come again on the next connection
        self.mailbox.acked(f.result())
        self.acked(ids)

    def acked(self, ids: list[int]) -> None:
        self.sent.difference_update(ids)
        if self.capped and len(self.sent) < MAX_UNACKED:
            # Room again for envelopes held back while the client was behind.
            self.capped = False
            self.slot.mail = True
            self.slot.wake()

    async def on_send(self, frame: Send) -> None:
        if self.sends is None:
            await self.send(StreamError("unsupported", "this server takes messages on POST /v1/messages"))
            return
        while self.inflight >= MAX_INFLIGHT_SENDS:
            self._room.clear()
            await self._room.wait()
        self.inflight += 1
        await self.sends.send(self.device, frame, self.answer)


def stream_router(accounts: AccountService, mailbox: MailboxService, keys: KeyService, hub: Hub, *,
                  recheck: float | None = None, on_open: Callable[[int], None] | None = None,
                  sends: StreamSender | None = None, group: GroupWriter | None = None) -> APIRouter:
    """`recheck`: seconds between mailbox re-reads of an idle stream (multi-node: a wake-up from
    another node may be lost); `on_open(+1/-1)` follows the number of open streams."""
    r = APIRouter()

    @r.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        try:
            device = await accounts.authenticate(_bearer(ws))
        except Unauthorized as exc:
            # Accept first so the client sees the close code rather than a bare HTTP 403.
            await ws.accept()
            await ws.close(code=CLOSE_UNAUTHORIZED, reason=exc.message[:120])
            return
        await ws.accept()
        slot = hub.register(device.device_id)
        if on_open is not None:
            on_open(1)
        conn = _Connection(ws, device, slot, mailbox, keys, recheck, sends, group)
        reader = asyncio.create_task(conn.reader())
        writer = asyncio.create_task(conn.writer())
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer.done() and not reader.done():
                # Keep reading until the disconnect: an Ack the device sent just before closing
                # must still be applied, or it would be delivered again.
                err = writer.exception()
                if err is not None and not isinstance(err, _GONE):
                    log.error("stream of %s failed: %s", device.device_id, type(err).__name__)
                    with contextlib.suppress(*_GONE):
                        await ws.close(code=1011)
                await asyncio.wait({reader}, timeout=READER_GRACE)
            elif reader.done() and (err := reader.exception()) is not None and not isinstance(err, _GONE):
                log.error("stream of %s failed: %s", device.device_id, type(err).__name__)
        finally:
            for t in (reader, writer):
                t.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            hub.unregister(slot)
            if on_open is not None:
                on_open(-1)
            if ws.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(*_GONE):
                    await ws.close()
        log.info("stream of %s closed", device.device_id)

    return r
