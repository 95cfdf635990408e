"""The issue-3 tables of `SqlStore`: server secrets, blocks, blobs, reports, envelope log."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from veil.server.storage.base import Duplicate
from veil.server.storage.base_extras import BlobRow, LogRow, ReportRow
from veil.server.storage.dialect import insert_ignore
from veil.server.storage.schema import (
    blob_downloads,
    blobs,
    blocks,
    envelope_log,
    envelopes,
    reports,
    server_secrets,
)
from veil.server.storage.sql_base import SqlBase

__all__ = ["SqlExtras"]

_LOG_PURGE_CHUNK = 10_000  # log rows per delete transaction


class SqlExtras(SqlBase):
    # -- server secrets --------------------------------------------------------------------
    async def server_secret(self, name: str, candidate: bytes) -> bytes:
        ss = server_secrets.c
        async with self._write() as conn:
            await conn.execute(insert_ignore(conn, server_secrets).values(name=name, value=candidate))
            value = (await conn.execute(select(ss.value).where(ss.name == name))).scalar_one()
        return bytes(value)

    # -- blocks ----------------------------------------------------------------------------
    async def add_block(self, blocker: str, blocked: str, now: int) -> None:
        async with self._write() as conn:
            await conn.execute(insert_ignore(conn, blocks).values(blocker=blocker, blocked=blocked,
                                                                  created_at=now))

    async def remove_block(self, blocker: str, blocked: str) -> bool:
        async with self._write() as conn:
            res = await conn.execute(delete(blocks).where(blocks.c.blocker == blocker,
                                                          blocks.c.blocked == blocked))
        return bool(res.rowcount)

    async def blocked_by(self, blocker: str) -> list[str]:
        async with self._read() as conn:
            rows = await conn.execute(select(blocks.c.blocked).where(blocks.c.blocker == blocker)
                                      .order_by(blocks.c.blocked))
            return list(rows.scalars())

    async def is_blocked(self, blocker: str, blocked: str) -> bool:
        async with self._read() as conn:
            r = (await conn.execute(select(blocks.c.blocker).where(
                blocks.c.blocker == blocker, blocks.c.blocked == blocked))).first()
        return r is not None

    # -- blobs -----------------------------------------------------------------------------
    async def create_blob(self, blob: BlobRow) -> None:
        try:
            async with self._write() as conn:
                await conn.execute(insert(blobs).values(
                    blob_id=blob.blob_id, uploader=blob.uploader, uploader_device=blob.uploader_device,
                    size=blob.size, created_at=blob.created_at,
                    expires_at=blob.expires_at, downloads_wanted=blob.downloads_wanted))
        except IntegrityError as exc:
            raise Duplicate("blob id taken") from exc

    async def get_blob(self, blob_id: str) -> BlobRow | None:
        async with self._read() as conn:
            r = (await conn.execute(select(blobs).where(blobs.c.blob_id == blob_id))).first()
        if r is None:
            return None
        return BlobRow(blob_id=r.blob_id, uploader=r.uploader, uploader_device=r.uploader_device, size=r.size,
                       created_at=r.created_at, expires_at=r.expires_at, downloads_wanted=r.downloads_wanted)

    async def record_download(self, blob_id: str, device_id: str) -> int:
        bd = blob_downloads.c
        async with self._write() as conn:
            found = (await conn.execute(select(blobs.c.blob_id).where(blobs.c.blob_id == blob_id))).first()
            if found is None:
                return 0
            await conn.execute(insert_ignore(conn, blob_downloads).values(blob_id=blob_id,
                                                                          device_id=device_id))
            n = (await conn.execute(select(func.count()).select_from(blob_downloads)
                                    .where(bd.blob_id == blob_id))).scalar_one()
        return int(n)

    async def delete_blob(self, blob_id: str) -> bool:
        async with self._write() as conn:
            await conn.execute(delete(blob_downloads).where(blob_downloads.c.blob_id == blob_id))
            res = await conn.execute(delete(blobs).where(blobs.c.blob_id == blob_id))
        return bool(res.rowcount)

    async def delete_expired_blobs(self, now: int) -> list[str]:
        b = blobs.c
        async with self._write() as conn:
            ids = list((await conn.execute(select(b.blob_id).where(b.expires_at <= now))).scalars())
            if ids:
                await conn.execute(delete(blob_downloads).where(blob_downloads.c.blob_id.in_(ids)))
                await conn.execute(delete(blobs).where(b.blob_id.in_(ids)))
        return ids

    # -- reports ---------------------------------------------------------------------------
    async def create_report(self, report: ReportRow) -> None:
        async with self._write() as conn:
            await conn.execute(insert(reports).values(
                report_id=report.report_id, created_at=report.created_at, reporter=report.reporter,
                reporter_device=report.reporter_device, peer=report.peer, kind=report.kind,
                verdict=report.verdict, reason=report.reason, content_json=report.content_json))

    async def list_reports(self) -> list[ReportRow]:
        r_ = reports.c
        async with self._read() as conn:
            rows = (await conn.execute(select(reports).order_by(r_.created_at, r_.report_id))).all()
        return [ReportRow(report_id=r.report_id, created_at=r.created_at, reporter=r.reporter,
                          reporter_device=r.reporter_device, peer=r.peer, kind=r.kind, verdict=r.verdict,
                          reason=r.reason, content_json=r.content_json) for r in rows]

    # -- envelope metadata log -------------------------------------------------------------
    async def envelope_log_of(self, handle: str) -> list[LogRow]:
        el = envelope_log.c
        async with self._read() as conn:
            rows = (await conn.execute(select(envelope_log)
                                       .where(or_(el.sender == handle, el.recipient_handle == handle))
                                       .order_by(el.id))).all()
        return [LogRow(sender=r.sender, sender_device=r.sender_device, recipient_handle=r.recipient_handle,
                       recipient_device=r.recipient_device, server_ts=r.server_ts, size=r.size)
                for r in rows]

    async def purge_envelope_log(self, before: int) -> int:
        # The log has no server_ts index (one more write per message on the hot path). Rows are
        # appended in time order, so a binary search over ids by primary-key look-ups finds the
        # end of the expired prefix; it is deleted in id ranges, a bounded transaction each. The
        # server_ts condition keeps any row that committed out of order.
        el = envelope_log.c
        async with self._read() as conn:
            lo, hi = (await conn.execute(select(func.min(el.id), func.max(el.id)))).one()
            if lo is None:
                return 0
            start = end = lo  # every row with id < end is expired (as far as the order holds)
            while lo <= hi:
                mid = (lo + hi) // 2
                ts = (await conn.execute(select(el.server_ts).where(el.id >= mid).order_by(el.id).limit(1))
                      ).scalar_one_or_none()
                if ts is not None and ts < before:
                    end, lo = mid + 1, mid + 1
                else:
                    hi = mid - 1
        deleted = 0
        while start < end:
            stop = min(start + _LOG_PURGE_CHUNK, end)
            async with self._write() as conn:
                res = await conn.execute(delete(envelope_log).where(el.id >= start, el.id < stop,
                                                                    el.server_ts < before))
            deleted += int(res.rowcount)
            start = stop
        return deleted

    async def count_envelopes(self) -> int:
        async with self._read() as conn:
            return int((await conn.execute(select(func.count()).select_from(envelopes))).scalar_one())
