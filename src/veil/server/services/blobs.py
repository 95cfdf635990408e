"""Attachment blobs: opaque bytes streamed to `<data_dir>/blobs/`, rows in the database.

An upload is written to a temporary file as it arrives (never held whole in memory), hashed
on the way, and renamed into place only when complete and within the size limit. A blob goes
away when it expires (`max_age`), when enough distinct devices have downloaded it completely
(`downloads`), or when its uploader deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from veil.server.clock import Clock
from veil.server.errors import Forbidden, NotFound, TooLarge
from veil.server.storage.base import DeviceRow, Store
from veil.server.storage.base_extras import BlobRow

__all__ = ["BLOB_ID_RE", "MAX_AGE_S", "BlobService"]

log = logging.getLogger("veil.server.blobs")

BLOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 128 random bits, urlsafe base64
MAX_AGE_S = 30 * 24 * 3600
WRITE_BUFFER = 4 * 1024 * 1024  # bytes gathered before one hash-and-write step (in a worker thread)
MAX_PARTS = 512  # body pieces per step: one writev takes at most IOV_MAX (1024) buffers
READ_CHUNK = 1024 * 1024
DRAIN_LIMIT = 16 * 1024 * 1024  # refused bytes read and dropped so the client sees the 413


def _write(f: BinaryIO, parts: list[bytes]) -> None:
    """Append `parts` to the unbuffered file `f` (one writev, no joined copy; the GIL is released,
    so the event loop keeps receiving)."""
    total = sum(map(len, parts))
    done = os.writev(f.fileno(), parts) if parts else 0
    if done < total:  # a short write (rare on a regular file): finish the rest plainly
        rest = memoryview(b"".join(parts))[done:]
        while rest:
            rest = rest[f.write(rest) or 0:]


class BlobService:
    def __init__(self, store: Store, clock: Clock, directory: Path, *, max_size: int) -> None:
        self._store = store
        self._clock = clock
        self.directory = directory
        self.max_size = max_size

    def _too_large(self) -> TooLarge:
        return TooLarge(f"blobs are at most {self.max_size} bytes", "blob_too_large")

    def path(self, blob_id: str) -> Path:
        return self.directory / blob_id

    async def upload(self, device: DeviceRow, chunks: AsyncIterable[bytes], *, declared: int | None,
                     max_age_s: int, downloads: int) -> BlobRow:
        if declared is not None and declared > self.max_size:
            if declared <= self.max_size + DRAIN_LIMIT:
                await self._drain(chunks, DRAIN_LIMIT + self.max_size)
            raise self._too_large()
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        blob_id = secrets.token_urlsafe(16)
        tmp = self.directory / f".upload-{blob_id}"
        size, parts, gathered = 0, list[bytes](), 0
        f = await asyncio.to_thread(tmp.open, "wb", buffering=0)
        pending: asyncio.Future[None] | None = None
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_size:
                        await self._drain(chunks, DRAIN_LIMIT)
                        raise self._too_large()
                    parts.append(chunk)
                    gathered += len(chunk)
                    if gathered >= WRITE_BUFFER or len(parts) >= MAX_PARTS:
                        # Write this block in a worker thread while the next one arrives
                        # (the event loop only keeps a list: growing a big buffer here would cost
                        # a fresh mmap and its page faults per block).
                        if pending is not None:
                            await pending
                        pending = asyncio.ensure_future(asyncio.to_thread(_write, f, parts))
                        parts, gathered = [], 0
                if pending is not None:
                    await pending
                    pending = None
                await asyncio.to_thread(_write, f, parts)
            finally:
                if pending is not None:  # a thread cannot be cancelled: let it finish before closing
                    with contextlib.suppress(BaseException):
                        await asyncio.wait([pending])
                await asyncio.to_thread(f.close)
            await asyncio.to_thread(os.replace, tmp, self.path(blob_id))
        except BaseException:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(tmp.unlink, missing_ok=True)
            raise
        now = self._clock.now_ms()
        row = BlobRow(blob_id=blob_id, uploader=device.handle, uploader_device=device.device_id, size=size,
                      created_at=now, expires_at=now + max_age_s * 1000,
                      downloads_wanted=downloads)
        try:
            await self._store.create_blob(row)
        except Exception:  # Duplicate (a 128-bit collision) or the database: keep no orphan file
            await self._remove_file(blob_id)
            raise
        log.info("blob stored by %s/%s: %d bytes", device.handle, device.device_id, size)
        return row

    @staticmethod
    async def _drain(chunks: AsyncIterable[bytes], budget: int) -> None:
        """Read and drop what is left of a refused upload, up to `budget` bytes."""
        with contextlib.suppress(Exception):
            async for chunk in chunks:
                budget -= len(chunk)
                if budget < 0:
                    return

    async def get(self, blob_id: str) -> BlobRow:
        """The live blob, or 404 `unknown_blob` (bad id, gone, expired, or its file missing)."""
        row = await self._store.get_blob(blob_id) if BLOB_ID_RE.match(blob_id) else None
        if row is None or row.expires_at <= self._clock.now_ms() or not self.path(blob_id).is_file():
            raise NotFound("no such blob (or it expired)", "unknown_blob")
        return row

    async def chunks(self, row: BlobRow) -> AsyncIterator[bytes]:
        """The blob's bytes in pieces, read in a worker thread one piece ahead of the sender."""
        f = await asyncio.to_thread(self.path(row.blob_id).open, "rb")
        pending = asyncio.ensure_future(asyncio.to_thread(f.read, READ_CHUNK))
        try:
            while chunk := await pending:
                pending = asyncio.ensure_future(asyncio.to_thread(f.read, READ_CHUNK))
                yield chunk
        finally:
            with contextlib.suppress(BaseException):
                await asyncio.wait([pending])
            await asyncio.to_thread(f.close)

    async def read_all(self, row: BlobRow) -> bytes:
        return await asyncio.to_thread(self.path(row.blob_id).read_bytes)

    async def downloaded(self, device: DeviceRow, row: BlobRow) -> None:
        """A download finished: record it, and delete the blob once enough devices have it."""
        n = await self._store.record_download(row.blob_id, device.device_id)
        if row.downloads_wanted and n >= row.downloads_wanted:
            await self._remove(row.blob_id)
            log.info("blob deleted after %d downloads", n)

    async def delete(self, device: DeviceRow, blob_id: str) -> None:
        row = await self.get(blob_id)
        if row.uploader != device.handle:
            raise Forbidden("only the uploader can delete a blob", "not_yours")
        await self._remove(blob_id)

    async def _remove(self, blob_id: str) -> None:
        await self._store.delete_blob(blob_id)  # the row first: a missing row means "gone"
        await self._remove_file(blob_id)

    async def _remove_file(self, blob_id: str) -> None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.path(blob_id).unlink, missing_ok=True)

    async def purge(self) -> int:
        """Delete expired blobs (rows, then files); return how many."""
        ids = await self._store.delete_expired_blobs(self._clock.now_ms())
        for blob_id in ids:
            await self._remove_file(blob_id)
        if ids:
            log.info("purged %d expired blobs", len(ids))
        return len(ids)
