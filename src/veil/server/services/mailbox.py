"""Per-device mailboxes of secret-thread envelopes: send (with the device check), fetch, ack, purge.

A send is cheap on purpose: the franking key is cached, each envelope costs one HMAC for its
tag, and the batch is one transaction with one INSERT for the envelopes and one for their
metadata log. Envelopes to a recipient who blocks the sender are dropped without a word.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from veil.protocol.wire import KIND_SECRET
from veil.server.clock import Clock
from veil.server.errors import BadRequest, Conflict, NotFound
from veil.server.hub import Hub
from veil.server.metrics import Metrics
from veil.server.services.franking import Franker
from veil.server.services.writer import GroupWriter
from veil.server.storage.base import BatchResult, DeviceRow, EnvelopeRow, NewEnvelope, Store

__all__ = ["MailboxService", "OutgoingEnvelope"]

log = logging.getLogger("veil.server.mailbox")

Target = tuple[str, str]  # (handle, device_id)


@dataclass(frozen=True, slots=True)
class OutgoingEnvelope:
    handle: str
    device_id: str
    olm_type: int
    body: bytes


def _targets_json(targets: set[Target]) -> list[dict[str, str]]:
    return [{"handle": h, "device_id": d} for h, d in sorted(targets)]


class MailboxService:
    def __init__(self, store: Store, clock: Clock, hub: Hub, franker: Franker, *,
                 envelope_max_age_ms: int, metadata_max_age_ms: int = 0, metrics: Metrics | None = None) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._hub = hub
        self._franker = franker
        self._max_age_ms = envelope_max_age_ms
        self._log_max_age_ms = metadata_max_age_ms  # 0: the metadata log is kept forever
        # Set by `use_group` when stream sends and acks go through the group writer.
        self.barrier: Callable[[], Awaitable[None]] | None = None
        self._read_after: Callable[[str, int, int], Awaitable[list[EnvelopeRow]]] | None = None

    def use_group(self, group: GroupWriter) -> None:
        """Stream sends and acks go through `group`: REST reads wait for it first, and streams
        read their mailbox on its raw connections (one prepared SELECT)."""
        self.barrier = group.barrier
        self._read_after = group.fetch

    async def send(self, sender: DeviceRow, client_message_id: str, recipient: str,
                   envelopes: Sequence[OutgoingEnvelope], skipped: Sequence[Target],
                   commitment: bytes = b"") -> BatchResult:
        # A retry answers as the first call did, even if the device lists changed since.
        earlier = await self._store.get_batch(sender.device_id, client_message_id)
        if earlier is not None:
            return earlier
        if await self._store.get_account(recipient) is None:
            raise NotFound(f"no user {recipient!r}", "unknown_user")
        given = [(e.handle, e.device_id) for e in envelopes]
        if len(set(given)) != len(given):
            raise BadRequest("envelopes names a device twice", "duplicate_device")
        active = await self._store.devices_of(sorted({recipient, sender.handle}), active_only=True)
        expected = {(d.handle, d.device_id) for d in active if d.device_id != sender.device_id}
        expected -= set(skipped)
        missing, stale = expected - set(given), set(given) - expected
        if missing or stale:
            raise Conflict("the envelopes do not match the current device lists; refresh and retry",
                           "device_mismatch",
                           extra={"missing": _targets_json(missing), "stale": _targets_json(stale)})
        now = self._clock.now_ms()
        # While the recipient blocks the sender, their envelopes are dropped (the sender's own
        # other devices still get theirs); the answer is the same, so nothing gives it away.
        dropped = recipient != sender.handle and await self._store.is_blocked(recipient, sender.handle)
        key = await self._franker.key() if commitment else b""
        rows = [NewEnvelope(device_id=e.device_id, kind=KIND_SECRET, sender=sender.handle,
                            sender_device=sender.device_id, server_ts=now, olm_type=e.olm_type, body=e.body,
                            client_message_id=client_message_id, recipient_handle=e.handle,
                            commitment=commitment,
                            franking_tag=self._franker.tag(key, commitment, sender.handle, sender.device_id,
                                                           e.handle, e.device_id, now) if commitment else b"")
                for e in envelopes if not (dropped and e.handle == recipient)]
        started = time.perf_counter()
        result = await self._store.store_batch(sender.device_id, client_message_id, now, rows,
                                               count=len(envelopes), log=True)
        if result.created:
            self._hub.notify(r.device_id for r in rows)  # after commit, never before
            if self._metrics is not None:
                self._metrics.send_commit_seconds.observe(time.perf_counter() - started)
                self._metrics.messages_stored.inc()
                self._metrics.envelopes_stored.inc(len(rows))
            log.info("batch from %s/%s to %s: %d envelopes", sender.handle, sender.device_id, recipient,
                     len(rows))
        return result

    async def fetch(self, device: DeviceRow, limit: int) -> tuple[list[EnvelopeRow], bool]:
        if self.barrier is not None:
            await self.barrier()  # acks a stream sent before closing are applied before we read
        rows = await self._store.fetch_envelopes(device.device_id, limit=limit + 1)
        return rows[:limit], len(rows) > limit

    async def fetch_after(self, device_id: str, after_id: int, limit: int) -> list[EnvelopeRow]:
        if self._read_after is not None:
            return await self._read_after(device_id, after_id, limit)
        return await self._store.fetch_envelopes(device_id, after_id=after_id, limit=limit)

    async def ack(self, device: DeviceRow, ids: Sequence[int]) -> int:
        n = await self._store.delete_envelopes(device.device_id, ids)
        if self._metrics is not None and n:
            self._metrics.envelopes_acked.inc(n)
        return n

    def acked(self, n: int) -> None:
        """`n` envelopes were deleted by the stream's group writer (for /metrics)."""
        if self._metrics is not None and n:
            self._metrics.envelopes_acked.inc(n)

    def delivered(self, n: int) -> None:
        """`n` envelopes were pushed on a stream (for /metrics)."""
        if self._metrics is not None:
            self._metrics.envelopes_delivered.inc(n)

    async def purge(self) -> int:
        now = self._clock.now_ms()
        n = await self._store.purge(envelopes_before=now - self._max_age_ms, links_before=now)
        if n:
            log.info("purged %d envelopes older than %d s", n, self._max_age_ms // 1000)
        if self._log_max_age_ms:
            logged = await self._store.purge_envelope_log(now - self._log_max_age_ms)
            if logged:
                log.info("purged %d metadata log rows older than %d s", logged, self._log_max_age_ms // 1000)
        return n
