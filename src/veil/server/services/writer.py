"""ONE writer per node for the stream send path: group commit, flushed at the end of a loop tick.

`submit` and `ack` only queue work and schedule a flush with `loop.call_soon`, so every Send and
Ack frame read during the current event-loop iteration lands in the same transaction; while a
transaction is in flight, new work piles up for the next one. That is group commit without a
timer: under light load a send commits at once (low latency), under heavy load each commit
carries hundreds of sends (high throughput).

Futures resolve only after COMMIT returned, and `on_commit` (push to streams, wake other nodes)
runs after that: nothing is acknowledged or delivered before it is durable.
If a group fails (say one batch names a device revoked since it was checked, a foreign-key
error), its batches are retried one transaction each so one bad batch cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from veil.server.storage.base import EnvelopeRow
from veil.server.storage.group_sql import BatchIn, BatchOut, GroupBackend

__all__ = ["GroupWriter", "Written"]

log = logging.getLogger("veil.server.writer")


@dataclass(slots=True)
class _Pending:
    batch: BatchIn
    future: asyncio.Future[BatchOut]


@dataclass(slots=True)
class _Group:
    batches: list[_Pending] = field(default_factory=list)
    acks: list[tuple[str, int]] = field(default_factory=list)
    ack_futures: list[tuple[asyncio.Future[int], int]] = field(default_factory=list)  # (future, how many)


@dataclass(frozen=True, slots=True)
class Written:
    batch: BatchIn
    out: BatchOut


class GroupWriter:
    def __init__(self, backend: GroupBackend, on_commit: Callable[[list[Written]], None]) -> None:
        self._backend = backend
        self._on_commit = on_commit
        self._next = _Group()
        self._scheduled = False
        self._flushing: asyncio.Task[None] | None = None
        self.commits = 0  # transactions (for tests and profiling)

    def submit(self, batch: BatchIn) -> asyncio.Future[BatchOut]:
        fut: asyncio.Future[BatchOut] = asyncio.get_running_loop().create_future()
        self._next.batches.append(_Pending(batch, fut))
        self._schedule()
        return fut

    def ack(self, device_id: str, ids: Sequence[int]) -> asyncio.Future[int]:
        """Delete these envelopes of the device in the next group; resolves to how many."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._next.acks.extend((device_id, i) for i in ids)
        self._next.ack_futures.append((fut, len(ids)))
        self._schedule()
        return fut

    async def fetch(self, device_id: str, after_id: int, limit: int) -> list[EnvelopeRow]:
        """A stream's mailbox read on the backend's raw connections (see group_sql)."""
        return await self._backend.fetch(device_id, after_id, limit)

    async def barrier(self) -> None:
        """Wait until every send and ack handed in before this call is committed (or failed).

        A REST read after a stream closes must see the acks that stream sent before closing.
        """
        waits: list[asyncio.Future[Any]] = [p.future for p in self._next.batches]
        waits += [fut for fut, _n in self._next.ack_futures]
        if self._flushing is not None:
            waits.append(self._flushing)
        if waits:
            await asyncio.shield(asyncio.gather(*waits, return_exceptions=True))

    def _schedule(self) -> None:
        if not self._scheduled and self._flushing is None:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        group, self._next = self._next, _Group()
        if not group.batches and not group.acks and not group.ack_futures:
            return
        self._flushing = asyncio.get_running_loop().create_task(self._flush(group))

    async def _flush(self, group: _Group) -> None:
        try:
            await self._write(group)
        finally:
            self._flushing = None
            if self._next.batches or self._next.ack_futures:
                self._schedule()

    async def _write(self, group: _Group) -> None:
        # A retry of a batch still in this group waits for the first one's answer (the backend
        # needs distinct keys in one INSERT).
        firsts: dict[tuple[str, str], _Pending] = {}
        repeats: list[tuple[_Pending, _Pending]] = []
        for p in group.batches:
            key = (p.batch.sender_device, p.batch.client_message_id)
            if key in firsts:
                repeats.append((p, firsts[key]))
            else:
                firsts[key] = p
        pending = list(firsts.values())
        try:
            outs, deleted = await self._backend.write([p.batch for p in pending], group.acks)
        except Exception as exc:
            if len(pending) + (1 if group.acks else 0) <= 1:
                self._fail(group, exc)
                return
            log.warning("group commit of %d batches failed (%s); retrying one by one", len(pending),
                        type(exc).__name__)
            await self._one_by_one(group, pending)
            self._answer_repeats(repeats)
            return
        self.commits += 1
        for p, out in zip(pending, outs, strict=True):
            if not p.future.done():
                p.future.set_result(out)
        self._answer_acks(group, deleted)
        self._answer_repeats(repeats)
        self._committed([Written(p.batch, o) for p, o in zip(pending, outs, strict=True)])

    async def _one_by_one(self, group: _Group, pending: list[_Pending]) -> None:
        deleted = 0
        try:
            if group.acks:
                _, deleted = await self._backend.write([], group.acks)
        except Exception as exc:
            for fut, _n in group.ack_futures:
                if not fut.done():
                    fut.set_exception(exc)
        else:
            self._answer_acks(group, deleted)
        for p in pending:
            try:
                (out,), _ = await self._backend.write([p.batch], [])
            except Exception as exc:
                if not p.future.done():
                    p.future.set_exception(exc)
                continue
            if not p.future.done():
                p.future.set_result(out)
            self._committed([Written(p.batch, out)])

    def _committed(self, written: list[Written]) -> None:
        try:
            self._on_commit(written)
        except Exception:  # a push failing must not turn a committed send into an error
            log.exception("after-commit delivery failed")

    @staticmethod
    def _answer_acks(group: _Group, deleted: int) -> None:
        # Per-ack counts are not split out by the single DELETE; each caller learns the total
        # capped to what it asked (only metrics use it).
        for fut, n in group.ack_futures:
            if not fut.done():
                fut.set_result(min(n, deleted))

    @staticmethod
    def _answer_repeats(repeats: list[tuple[_Pending, _Pending]]) -> None:
        for p, first in repeats:
            if p.future.done():
                continue
            if first.future.cancelled() or first.future.exception() is not None:
                p.future.set_exception(RuntimeError("the first copy of this batch failed"))
            else:
                o = first.future.result()
                p.future.set_result(BatchOut(False, o.server_ts, o.count, []))

    @staticmethod
    def _fail(group: _Group, exc: Exception) -> None:
        for p in group.batches:
            if not p.future.done():
                p.future.set_exception(exc)
        for fut, _n in group.ack_futures:
            if not fut.done():
                fut.set_exception(exc)

    async def close(self) -> None:
        while self._flushing is not None or self._scheduled:
            if self._flushing is not None:
                await asyncio.gather(self._flushing, return_exceptions=True)
            else:
                await asyncio.sleep(0)
        self._fail(self._next, RuntimeError("the server is shutting down"))
        await self._backend.close()
