"""Send frames on the stream: the checks of POST /v1/messages without HTTP, pydantic or base64.

Semantics are the REST path's (`MailboxService.send`): the envelopes must name exactly the
active devices of the recipient and of the sender (other than the sending device) minus the
skipped ones; envelopes to a recipient who blocks the sender are dropped without a word; the
key (sender device, client_message_id) makes a retry answer as the first call did; each
envelope gets its franking tag; each stored envelope gets an `envelope_log` row.

What differs is cost: device sets and block lists come from `Directory` (memory), and the
validated batch goes to the node's `GroupWriter`. A warm send touches the database only inside
the group transaction. The database is read only on the rare paths: a cache miss, and a
mismatch (to answer a retry whose batch was stored before the device lists changed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from veil.protocol.wire import KIND_SECRET, DeviceRef, Envelope, Send, SendResult
from veil.server.clock import Clock
from veil.server.hub import Hub
from veil.server.metrics import Metrics
from veil.server.services.directory import Directory
from veil.server.services.franking import Franker
from veil.server.services.writer import GroupWriter, Written
from veil.server.storage.base import DeviceRow, NewEnvelope, Store
from veil.server.storage.group_sql import BatchIn, BatchOut

__all__ = ["COMMITMENT_BYTES", "StreamSender", "after_commit"]

log = logging.getLogger("veil.server.sends")

COMMITMENT_BYTES = 32

Answer = Callable[[SendResult], None]


def _refs(targets: set[tuple[str, str]]) -> list[DeviceRef]:
    return [DeviceRef(h, d) for h, d in sorted(targets)]


def _fail(cmid: str, code: str, message: str, missing: list[DeviceRef] | None = None,
          stale: list[DeviceRef] | None = None) -> SendResult:
    return SendResult(cmid, False, error=code, message=message, missing=missing or [], stale=stale or [])


class StreamSender:
    def __init__(self, store: Store, clock: Clock, directory: Directory, franker: Franker,
                 writer: GroupWriter) -> None:
        self._store = store
        self._clock = clock
        self._directory = directory
        self._franker = franker
        self._writer = writer

    async def send(self, sender: DeviceRow, f: Send, answer: Answer) -> None:
        """Check `f` and queue it for the next group commit; `answer` gets its SendResult (called
        from a future's callback, after the commit or at once when the check fails)."""
        cmid = f.client_message_id
        if f.commitment and len(f.commitment) != COMMITMENT_BYTES:
            answer(_fail(cmid, "bad_commitment", f"commitment must be {COMMITMENT_BYTES} bytes"))
            return
        given = [(e.handle, e.device_id) for e in f.envelopes]
        if len(set(given)) != len(given):
            answer(_fail(cmid, "duplicate_device", "envelopes names a device twice"))
            return
        d = self._directory
        them = d.cached(f.recipient) or await d.get(f.recipient)
        mine = d.cached(sender.handle) or await d.get(sender.handle)
        if them is None or mine is None:
            if not await self._earlier(sender, cmid, answer):
                answer(_fail(cmid, "unknown_user", f"no user {f.recipient!r}"))
            return
        expected = {(f.recipient, x) for x in them.devices}
        if f.recipient != sender.handle:
            expected |= {(sender.handle, x) for x in mine.devices}
        expected.discard((sender.handle, sender.device_id))
        expected.difference_update((s.handle, s.device_id) for s in f.skipped)
        got = set(given)
        if got != expected:
            if not await self._earlier(sender, cmid, answer):
                answer(_fail(cmid, "device_mismatch",
                             "the envelopes do not match the current device lists; refresh and retry",
                             missing=_refs(expected - got), stale=_refs(got - expected)))
            return
        now = self._clock.now_ms()
        # While the recipient blocks the sender, their envelopes are dropped (the sender's own
        # other devices still get theirs); the answer is the same, so nothing gives it away.
        dropped = f.recipient != sender.handle and sender.handle in them.blocked
        key = await self._franker.key() if f.commitment else b""
        tag = self._franker.tag
        rows = [NewEnvelope(device_id=e.device_id, kind=KIND_SECRET, sender=sender.handle,
                            sender_device=sender.device_id, server_ts=now, olm_type=e.olm_type, body=e.body,
                            client_message_id=cmid, recipient_handle=e.handle, commitment=f.commitment,
                            franking_tag=tag(key, f.commitment, sender.handle, sender.device_id, e.handle,
                                             e.device_id, now) if f.commitment else b"")
                for e in f.envelopes if not (dropped and e.handle == f.recipient)]
        fut = self._writer.submit(BatchIn(sender.device_id, cmid, now, len(f.envelopes), rows))

        def done(fut: asyncio.Future[BatchOut]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                exc = None if fut.cancelled() else fut.exception()
                log.warning("send batch failed: %s", type(exc).__name__)
                answer(_fail(cmid, "unavailable", "the message could not be stored; retry"))
            else:
                out = fut.result()
                answer(SendResult(cmid, True, server_ts=out.server_ts, count=out.count))

        fut.add_done_callback(done)

    async def _earlier(self, sender: DeviceRow, cmid: str, answer: Answer) -> bool:
        """A retry answers as the first call did, even if the device lists changed since."""
        earlier = await self._store.get_batch(sender.device_id, cmid)
        if earlier is None:
            return False
        answer(SendResult(cmid, True, server_ts=earlier.server_ts, count=earlier.count))
        return True


def after_commit(hub: Hub, metrics: Metrics | None) -> Callable[[list[Written]], None]:
    """What the writer does once a group is durable: push each new envelope to the local streams
    of its device (in commit order, so per-device order holds) and wake the other nodes."""

    def run(written: list[Written]) -> None:
        by_device: dict[str, list[Envelope]] = {}
        batches = envelopes = 0
        for w in written:
            if not w.out.created:
                continue
            batches += 1
            envelopes += len(w.batch.rows)
            for r, i in zip(w.batch.rows, w.out.ids, strict=True):
                by_device.setdefault(r.device_id, []).append(Envelope(
                    id=i, kind=r.kind, sender=r.sender, sender_device=r.sender_device, server_ts=r.server_ts,
                    olm_type=r.olm_type, body=r.body, client_message_id=r.client_message_id,
                    commitment=r.commitment, franking_tag=r.franking_tag))
        for device_id, envs in by_device.items():
            hub.push(device_id, envs)
        if hub.publisher is not None and by_device:
            hub.publisher.publish_wake(list(by_device))
        if metrics is not None and batches:
            metrics.messages_stored.inc(batches)
            metrics.envelopes_stored.inc(envelopes)

    return run
