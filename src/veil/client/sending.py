"""Sending: regular messages through the server, secret payloads encrypted per device.

Every secret payload carries a fresh franking key; its commitment travels beside the
ciphertext so the recipient can later report it verifiably.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from veil.client import timers
from veil.client.errors import ClientError, IdentityChanged, ServerRejected, ServerUnavailable, UsageError
from veil.client.models import Message
from veil.protocol.encoding import b64encode
from veil.protocol.errors import MalformedData
from veil.protocol.franking import commit, new_franking_key
from veil.protocol.payload import SecretPayload, decode_payload, encode_payload
from veil.protocol.wire import (
    MAX_SENDS_PER_FRAME,
    DeviceRef,
    Send,
    SendEnvelope,
    SendResult,
    Sends,
    decode_client_frame,
    encode_frame,
)

if TYPE_CHECKING:
    from veil.client.device import Device
    from veil.client.stream import StreamLink

__all__ = ["Outbox", "confirm_identity", "deliver_secret", "new_payload", "own_secret_message", "send_regular",
           "send_secret"]

log = logging.getLogger("veil.client.sending")


def new_payload(device: Device, peer: str, kind: str, **fields: Any) -> SecretPayload:
    return SecretPayload(message_id=uuid.uuid4().hex, sender=device.handle, sender_device=device.device_id,
                         to=peer, sent_at=device.clock(), kind=kind, franking_key=new_franking_key(),
                         **fields)


async def send_regular(device: Device, peer: str, *, text: str = "", kind: str = "text",
                       attachment: dict[str, Any] | None = None, sticker: str = "",
                       local_attachment: dict[str, Any] | None = None) -> Message:
    body: dict[str, Any] = {"client_message_id": uuid.uuid4().hex, "text": text, "kind": kind}
    if attachment is not None:
        body["attachment"] = attachment
    if sticker:
        body["sticker"] = sticker
    r = await device.api.call("POST", f"/v1/threads/{peer}/messages", body)
    m = Message(id=str(r["message_id"]), peer=peer, is_secret=False, kind=kind, sender=device.handle,
                sender_device=device.device_id, text=text, sent_at=int(r["server_ts"]), sticker=sticker,
                attachment=local_attachment)
    async with device.lock:
        device.store_message(m, commit=True)
    return m


async def send_secret(device: Device, payload: SecretPayload, *, show: Message | None = None) -> int:
    """Deliver a payload; store `show` in the thread once the server has it (held if the peer's
    identity changed). Returns the server's timestamp.

    The device lock is held only to encrypt and to write the outbox entry, never across the
    network round trip, so several sends (tasks) pipeline on the stream.
    """
    if not device.is_linked:
        raise UsageError("this device is not linked yet: link it from one of your other devices first")
    return await _deliver(device, payload, show, 0)


async def deliver_secret(device: Device, payload: SecretPayload) -> int:
    """Encrypt `payload` for every trusted device of both people and hand it to the server
    (through the outbox); return the server's timestamp once it has committed it."""
    return await _deliver(device, payload, None, 0)


async def _deliver(device: Device, payload: SecretPayload, show: Message | None, attempt: int) -> int:
    outbox = device.outbox
    key = payload.message_id
    outbox.resume()  # entries left by an earlier run go first
    outbox.live.add(key)
    try:
        while True:
            async with device.lock:
                device.context_peer = payload.to
                try:
                    frame = await _encrypt(device, payload, attempt)
                except IdentityChanged:
                    outbox.abandon(key)  # an earlier attempt's entry, if any
                    if show is not None:
                        held = dict(device.store.get(f"held:{payload.to}") or {})
                        held[key] = encode_payload(payload)
                        device.store.put(f"held:{payload.to}", held, commit=False)
                        device.store_message(dataclasses.replace(show, status="held"))
                    device.store.commit()
                    raise
                finally:
                    device.context_peer = ""
                fut = outbox.add(key, frame, payload, show, attempt)
            result = await outbox.wait(fut)
            if result.ok:
                return result.server_ts
            if result.error == "device_mismatch" and attempt < 3:
                attempt += 1  # the server's device view differs: refresh, re-encrypt, new attempt id
                continue
            outbox.abandon(key)
            raise ServerRejected(_STATUS.get(result.error, 400), result.error, result.message, {
                "missing": [{"handle": r.handle, "device_id": r.device_id} for r in result.missing],
                "stale": [{"handle": r.handle, "device_id": r.device_id} for r in result.stale]})
    finally:
        outbox.live.discard(key)


async def _encrypt(device: Device, payload: SecretPayload, attempt: int) -> Send:
    """One attempt's Send frame: the payload encrypted once per target device."""
    peer = payload.to
    plaintext = encode_payload(payload)
    refresh = attempt > 0
    them = await device.directory.get(peer, refresh=refresh)
    mine = await device.directory.get(device.handle, refresh=refresh)
    targets = [(peer, d) for d in them.devices]
    targets += [(device.handle, d) for d in mine.devices if d.device_id != device.device_id]
    failed = await device.sessions.ensure(device.api, targets)
    envelopes = []
    for handle, d in targets:
        if failed and (handle, d.device_id) in failed:
            continue
        olm_type, body = device.sessions.encrypt(d.curve25519, plaintext)
        envelopes.append(SendEnvelope(handle=handle, device_id=d.device_id, olm_type=olm_type, body=body))
    skipped = [DeviceRef(handle=peer, device_id=x) for x in them.untrusted]
    skipped += [DeviceRef(handle=device.handle, device_id=x) for x in mine.untrusted if x != device.device_id]
    skipped += [DeviceRef(handle=h, device_id=x) for h, x in failed]
    return Send(client_message_id=f"{payload.message_id}.{attempt}", recipient=peer, envelopes=envelopes,
                skipped=skipped, commitment=commit(payload.franking_key, plaintext))


_STATUS = {"device_mismatch": 409, "unknown_user": 404, "blocked": 403, "unauthorized": 401}
_ANSWER_TIMEOUT = 30.0


@dataclasses.dataclass(slots=True, eq=False)
class _Pending:
    key: str  # the payload's message id: the outbox entry's name
    frame: Send
    record: dict[str, Any]  # what the outbox entry holds (payload, attempt, the message to show)
    show: Message | None  # the sender's own copy, stored once the server acknowledges
    future: asyncio.Future[SendResult] | None  # None: nobody waits (an entry left by an earlier run)
    round: str = ""  # the outbox row (one per commit round) that holds the record


class Outbox:
    """Secret sends between encryption and the server's answer.

    `add` stages an entry (frame, payload, the message to show). One pump task then, per round:
    takes the device lock, stores the messages the server has acknowledged since the last round,
    writes the round's staged entries as one outbox row (a row is deleted once all its entries
    are answered or superseded by a later attempt), commits once (outbox, Olm session state,
    messages, thread index), and only then puts the newly committed frames on the wire, as one
    `Sends` frame (or over REST, in order, without a stream). Answers (`Results`)
    come back through `on_result`. An entry stays in the store until answered, so one that was
    in flight when the stream dropped is sent again on the next stream (or over REST), and one
    left by a crash is sent again when the device next connects, with the same
    client_message_id: the server answers a repeat as it answered the first, so nothing is
    stored twice, and its message is shown once, when acknowledged.
    """

    def __init__(self, device: Device) -> None:
        self.device = device
        self.live: set[str] = set()  # keys a send task is working on (between attempts too)
        self._staged: list[_Pending] = []  # written into the open transaction, not yet committed
        self._unsent: list[_Pending] = []  # committed, not yet on the wire
        self._inflight: dict[str, _Pending] = {}  # client_message_id → sent on the current stream
        self._done: list[tuple[_Pending, SendResult]] = []  # answered, not yet applied
        self._rounds: dict[str, set[str]] = {}  # outbox row → keys in it not yet finished
        self._latest: dict[str, _Pending] = {}  # key → its newest attempt
        self._pump_task: asyncio.Future[None] | None = None
        self._retries: set[asyncio.Future[None]] = set()
        self._resumed = False
        self._closed = False

    # -- used by send tasks (add with the device lock held) ----------------------------------
    def add(self, key: str, frame: Send, payload: SecretPayload, show: Message | None,
            attempt: int) -> asyncio.Future[SendResult]:
        record = {"key": key, "frame": encode_frame(frame), "payload": encode_payload(payload),
                  "attempt": attempt, "show": show.to_record() if show is not None else None}
        fut: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        p = _Pending(key, frame, record, show, fut)
        old = self._latest.get(key)
        if old is not None:
            self._finish(old)  # superseded by this attempt
        self._latest[key] = p
        self._staged.append(p)
        self._kick()
        return fut

    def abandon(self, key: str) -> None:
        """The send task gave up for good (refused, or held): its entry goes."""
        p = self._latest.get(key)
        if p is not None:
            self._finish(p)

    def _finish(self, p: _Pending) -> None:
        if self._latest.get(p.key) is p:
            del self._latest[p.key]
        left = self._rounds.get(p.round)
        if left is not None:
            left.discard(p.key)
            if not left:
                del self._rounds[p.round]
                self.device.store.outbox_remove([p.round])

    @staticmethod
    async def wait(fut: asyncio.Future[SendResult]) -> SendResult:
        """The answer; the future always ends: answered, or failed over to REST when the stream
        closes or stays silent for _ANSWER_TIMEOUT (one timer per round, not per send)."""
        return await fut

    # -- stream hooks --------------------------------------------------------------------------
    def resume(self) -> None:
        """Queue the store's entries that no task here knows of (left by an earlier run, or by a
        send that gave up while the server was unreachable): they go out before anything new."""
        if self._resumed or self._closed:
            return
        self._resumed = True
        known = self.live | {p.key for p in self._staged + self._unsent + list(self._inflight.values())}
        known |= {p.key for p, _r in self._done}
        rows = self.device.store.outbox()
        newest: dict[str, str] = {}  # key → the last row holding it (a later attempt supersedes)
        for row in rows:
            for record in row["entries"]:
                newest[str(record["key"])] = str(row["round"])
        found = []
        for row in rows:
            rk = str(row["round"])
            left = self._rounds.get(rk)
            adopted: set[str] = set()
            for record in row["entries"]:
                key = str(record["key"])
                if key in known or newest[key] != rk or (left is not None and key not in left):
                    continue
                try:
                    frame = decode_client_frame(record["frame"])
                except MalformedData:
                    continue
                if isinstance(frame, Send):
                    show = record.get("show")
                    p = _Pending(key, frame, record, Message.from_record(show) if show is not None else None,
                                 None, rk)
                    self._latest[key] = p
                    found.append(p)
                    adopted.add(key)
            if left is None:  # a row left by an earlier run
                if adopted:
                    self._rounds[rk] = adopted
                else:
                    self.device.store.outbox_remove([rk])
        if found:
            log.info("re-sending %d queued secret message(s)", len(found))
            self._unsent[:0] = found
            self._kick()

    def on_result(self, result: SendResult) -> None:
        p = self._inflight.pop(result.client_message_id, None)
        if p is not None:
            self._done.append((p, result))
            self._kick()

    def link_opened(self) -> None:
        self._resumed = False
        self.resume()
        self._kick()

    def _check_answered(self, link: StreamLink, last: _Pending) -> None:
        """A round's last frame still unanswered after _ANSWER_TIMEOUT: give up on this stream."""
        if not link.closed and self._inflight.get(last.frame.client_message_id) is last:
            log.warning("the server did not answer sends on the stream in %.0fs; using REST", _ANSWER_TIMEOUT)
            self.link_closed(link)

    def link_closed(self, link: StreamLink) -> None:
        """Frames sent on a stream that closed before answering go again (REST or the next stream)."""
        link.closed = True
        if self._inflight:
            self._unsent[:0] = list(self._inflight.values())
            self._inflight.clear()
            self._kick()

    def close(self) -> None:
        self._closed = True
        if self._pump_task is not None:
            self._pump_task.cancel()
        self._fail([*self._staged, *self._unsent, *self._inflight.values(), *(p for p, _r in self._done)],
                   ServerUnavailable("the device was closed; the message stays queued"))

    # -- the pump --------------------------------------------------------------------------------
    def _kick(self) -> None:
        if not self._closed and (self._pump_task is None or self._pump_task.done()):
            self._pump_task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        device = self.device
        try:
            while self._staged or self._unsent or self._done:
                async with device.lock:
                    done, self._done = self._done, []
                    self._apply(done)
                    if self._staged:
                        rk = uuid.uuid4().hex
                        device.store.outbox_put(rk, {"round": rk, "entries": [p.record for p in self._staged]})
                        self._rounds[rk] = set()
                        for p in self._staged:
                            p.round = rk
                            if self._latest.get(p.key) is p:
                                self._rounds[rk].add(p.key)
                    device.store.commit()
                    self._unsent += self._staged
                    self._staged = []
                for p, r in done:
                    if p.future is not None and not p.future.done():
                        p.future.set_result(r)
                if self._unsent:
                    unsent, self._unsent = self._unsent, []
                    await self._transmit(unsent)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the outbox failed; queued messages go again on the next connection")
            self._resumed = False
            self._fail([*self._staged, *self._unsent, *(p for p, _r in self._done)],
                       ServerUnavailable("the outbox failed; the message stays queued"))
            self._staged, self._unsent, self._done = [], [], []

    def _apply(self, done: list[tuple[_Pending, SendResult]]) -> None:
        """Store what the server acknowledged and drop finished entries (lock held, no commit)."""
        device = self.device
        for p, r in done:
            if r.ok:
                m = p.show
                if m is not None and device.store_message(m) and m.expires_at:
                    timers.schedule(device, m.id, m.expires_at)  # the sender's countdown starts at sending
                self._finish(p)
            elif r.error == "device_mismatch":
                if p.future is None:  # nobody waits: retry here, as the send task would
                    task = asyncio.ensure_future(self._retry(p))
                    self._retries.add(task)
                    task.add_done_callback(self._retries.discard)
            else:
                if p.future is None:
                    log.warning("a queued secret message was refused (%s); dropped", r.error)
                self._finish(p)

    async def _retry(self, p: _Pending) -> None:
        try:
            await _deliver(self.device, decode_payload(p.record["payload"]), p.show, int(p.record["attempt"]) + 1)
        except ClientError as exc:
            log.warning("a queued secret message could not be re-sent: %s", exc)

    async def _transmit(self, pending: list[_Pending]) -> None:
        link = self.device.stream_link
        if link is not None and not link.closed:
            for p in pending:
                self._inflight[p.frame.client_message_id] = p
            try:
                for i in range(0, len(pending), MAX_SENDS_PER_FRAME):
                    chunk = pending[i:i + MAX_SENDS_PER_FRAME]
                    await link.transmit(chunk[0].frame if len(chunk) == 1 else Sends(sends=[p.frame for p in chunk]))
            except ServerUnavailable:
                self.link_closed(link)  # back to _unsent, in order; the next round uses REST
                return
            asyncio.get_running_loop().call_later(_ANSWER_TIMEOUT, self._check_answered, link, pending[-1])
            return
        for n, p in enumerate(pending):  # no stream: REST, one at a time, in order
            try:
                r = await self.device.api.send(_rest_body(p.frame))
                result = SendResult(client_message_id=p.frame.client_message_id, ok=True,
                                    server_ts=int(r["server_ts"]))
            except ServerRejected as exc:
                result = SendResult(client_message_id=p.frame.client_message_id, ok=False, error=exc.code,
                                    message=str(exc))
            except ServerUnavailable as exc:
                self._resumed = False  # they stay in the store: the next connection sends them
                self._fail(pending[n:], exc)
                return
            self._done.append((p, result))

    @staticmethod
    def _fail(pending: Iterable[_Pending], exc: Exception) -> None:
        for p in pending:
            if p.future is not None and not p.future.done():
                p.future.set_exception(exc)


def _rest_body(frame: Send) -> dict[str, Any]:
    return {"client_message_id": frame.client_message_id, "recipient": frame.recipient,
            "envelopes": [{"handle": e.handle, "device_id": e.device_id, "olm_type": e.olm_type,
                           "body": b64encode(e.body)} for e in frame.envelopes],
            "skipped": [{"handle": x.handle, "device_id": x.device_id} for x in frame.skipped],
            "commitment": b64encode(frame.commitment)}


async def confirm_identity(device: Device, peer: str) -> int:
    """Accept `peer`'s new identity key and send the messages held for them; return how many."""
    async with device.lock:
        if not device.directory.confirm_identity(peer):
            return 0
        device.notice(peer, "identity_confirmed", f"You accepted {peer}'s new identity key.")
        held: dict[str, bytes] = dict(device.store.get(f"held:{peer}") or {})
        device.store.commit()
    sent = 0
    for mid, raw in held.items():
        await deliver_secret(device, decode_payload(raw))
        async with device.lock:
            record = device.store.get_message(mid)
            if record is not None and record.get("peer") == peer:
                device.store.update_message(mid, {**record, "status": "sent"}, commit=False)
            rest = dict(device.store.get(f"held:{peer}") or {})
            rest.pop(mid, None)
            device.store.put(f"held:{peer}", rest, commit=False)
            device.store.commit()
        sent += 1
    async with device.lock:
        if not device.store.get(f"held:{peer}"):
            device.store.delete(f"held:{peer}")
    return sent


def own_secret_message(device: Device, payload: SecretPayload, **fields: Any) -> Message:
    """The sender's own copy of a secret message, with its countdown started at sending."""
    expires = payload.sent_at + payload.timer * 1000 if payload.timer else 0
    return Message(id=payload.message_id, peer=payload.to, is_secret=True, kind=payload.kind,
                   sender=device.handle, sender_device=device.device_id, text=payload.body,
                   sent_at=payload.sent_at, sticker=payload.sticker, timer=payload.timer,
                   expires_at=expires, **fields)

