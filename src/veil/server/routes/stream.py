"""WS /v1/stream: drain the mailbox on connect, then push live; Ack frames delete.

A raw ASGI endpoint (`StreamEndpoint`), dispatched before FastAPI's middleware and routing: a
stream lives for hours and every frame would otherwise pass through half a dozen wrappers, each
also holding a suspended frame per idle connection. Per connection: the ASGI task reads (Send,
Ack, Ping, bad frames) and one writer task, woken by the hub, pushes.
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

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.types import Receive, Scope
from starlette.types import Send as AsgiSend

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

__all__ = ["CLOSE_UNAUTHORIZED", "STREAM_PATH", "StreamEndpoint"]

log = logging.getLogger("veil.server.stream")

STREAM_PATH = "/v1/stream"
CLOSE_UNAUTHORIZED = 4401
CLOSE_TRY_AGAIN = 1013  # the database is unreachable: the client reconnects with back-off
PAGE = 100  # envelopes per Deliver frame at most
MAX_FRAME_BODY = 512 * 1024  # and about this many body bytes, under clients' 1 MiB frame limit
MAX_UNACKED = 1000
MAX_INFLIGHT_SENDS = 1000  # Send frames of one connection waiting for their SendResult
READER_GRACE = 10.0  # seconds the reader may take to see the disconnect after the writer stops
_GONE = (RuntimeError, OSError)  # the peer went away mid-send or mid-read (uvicorn: ClientDisconnected)


def _bearer(scope: Scope) -> str | None:
    for name, raw in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = raw.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


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
    __slots__ = (
        "_room",
        "asgi_send",
        "capped",
        "closed",
        "device",
        "grace_expired",
        "group",
        "inflight",
        "keys",
        "mailbox",
        "recheck",
        "sends",
        "sent",
        "slot",
    )

    def __init__(self, asgi_send: AsgiSend, device: DeviceRow, slot: StreamSlot, mailbox: MailboxService,
                 keys: KeyService, recheck: float | None, sends: StreamSender | None = None,
                 group: GroupWriter | None = None) -> None:
        self.asgi_send = asgi_send
        self.sends = sends
        self.group = group
        self.inflight = 0  # Send frames read and not answered on the wire yet
        self._room: asyncio.Future[None] | None = None  # only while the reader waits for answers
        self.recheck = recheck
        self.device = device
        self.slot = slot
        self.mailbox = mailbox
        self.keys = keys
        self.sent: set[int] = set()  # pushed on this connection, not acknowledged yet
        self.capped = False  # the last drain stopped at MAX_UNACKED
        self.closed = False  # websocket.close sent
        self.grace_expired = False

    async def send(self, frame: ServerFrame) -> None:
        # uvicorn writes each message to the transport in one piece, so the reader's and the
        # writer's frames never interleave and need no lock.
        await self.asgi_send({"type": "websocket.send", "bytes": encode_frame(frame)})

    async def close(self, code: int, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            await self.asgi_send({"type": "websocket.close", "code": code, "reason": reason})

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
            if self._room is not None and not self._room.done():
                self._room.set_result(None)

    def answer(self, result: SendResult) -> None:
        self.slot.results.append(result)
        self.slot.wake()

    async def writer(self) -> None:
        """Drain, then QueueEmpty (only once the whole backlog is out), then live until closed."""
        announced = False
        while True:
            if self.slot.close_code is not None:
                await self.close(self.slot.close_code, "device revoked")
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

    async def reader(self, receive: Receive) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
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
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None
        self.inflight += 1
        await self.sends.send(self.device, frame, self.answer)


class StreamEndpoint:
    """The ASGI callable for WS /v1/stream. `recheck`: seconds between mailbox re-reads of an idle
    stream (multi-node: a wake-up from another node may be lost); `on_open(+1/-1)` follows the
    number of open streams."""

    def __init__(self, accounts: AccountService, mailbox: MailboxService, keys: KeyService, hub: Hub, *,
                 recheck: float | None = None, on_open: Callable[[int], None] | None = None,
                 sends: StreamSender | None = None, group: GroupWriter | None = None) -> None:
        self.accounts = accounts
        self.mailbox = mailbox
        self.keys = keys
        self.hub = hub
        self.recheck = recheck
        self.on_open = on_open
        self.sends = sends
        self.group = group

    async def __call__(self, scope: Scope, receive: Receive, send: AsgiSend) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        try:
            device = await self.accounts.authenticate(_bearer(scope))
        except Unauthorized as exc:
            # Accept first so the client sees the close code rather than a bare HTTP 403.
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_UNAUTHORIZED, "reason": exc.message[:120]})
            return
        except (OperationalError, InterfaceError, OSError) as exc:
            log.warning("stream refused, the database is unreachable (%s)", type(exc).__name__)
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN, "reason": "try again later"})
            return
        await send({"type": "websocket.accept"})
        # The scope lives as long as the connection; its headers are not needed any more.
        scope["headers"] = []
        hub = self.hub
        slot = hub.register(device.device_id)
        if self.on_open is not None:
            self.on_open(1)
        conn = _Connection(send, device, slot, self.mailbox, self.keys, self.recheck, self.sends, self.group)
        me = asyncio.current_task()
        writer = asyncio.create_task(conn.writer())
        writer.add_done_callback(functools.partial(self._writer_done, conn, me))
        try:
            await conn.reader(receive)
        except asyncio.CancelledError:
            if not conn.grace_expired or me is None:
                raise
            me.uncancel()  # the writer ended and the device never closed its side
        except _GONE:
            pass
        except Exception as exc:
            log.error("stream of %s failed: %s", device.device_id, type(exc).__name__)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            hub.unregister(slot)
            if self.on_open is not None:
                self.on_open(-1)
            with contextlib.suppress(*_GONE):
                await conn.close(1000)
        log.info("stream of %s closed", device.device_id)

    @staticmethod
    def _writer_done(conn: _Connection, reader: asyncio.Task[object] | None, task: asyncio.Task[None]) -> None:
        """The writer stopped (device revoked, connection gone, or a failure): keep reading until
        the disconnect, so an Ack the device sent just before closing is still applied, but no
        longer than READER_GRACE."""
        if task.cancelled() or reader is None:
            return
        err = task.exception()
        if err is not None and not isinstance(err, _GONE):
            log.error("stream of %s failed: %s", conn.device.device_id, type(err).__name__)
            closing = asyncio.ensure_future(_close_quietly(conn, 1011))
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)

        def expire() -> None:
            if not reader.done():
                conn.grace_expired = True
                reader.cancel()

        asyncio.get_running_loop().call_later(READER_GRACE, expire)


_closing: set[asyncio.Future[None]] = set()  # close frames being sent after a writer failure


async def _close_quietly(conn: _Connection, code: int) -> None:
    with contextlib.suppress(*_GONE):
        await conn.close(code)
