"""The issue-3 part of the storage interface: server secrets, blocks, blobs, reports and the
envelope metadata log. `base.Store` extends `ExtrasStore`; the same contract tests cover both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["BlobRow", "ExtrasStore", "LogRow", "ReportRow"]


@dataclass(frozen=True, slots=True)
class BlobRow:
    blob_id: str
    uploader: str  # handle
    uploader_device: str
    size: int
    created_at: int
    expires_at: int
    downloads_wanted: int  # 0 = no limit


@dataclass(frozen=True, slots=True)
class ReportRow:
    report_id: str
    created_at: int
    reporter: str
    reporter_device: str
    peer: str
    kind: str  # "secret" | "regular"
    verdict: str
    reason: str
    content_json: str  # what the reporter revealed (JSON text)


@dataclass(frozen=True, slots=True)
class LogRow:
    """One stored secret envelope, without its content."""

    sender: str
    sender_device: str
    recipient_handle: str
    recipient_device: str
    server_ts: int
    size: int


class ExtrasStore(Protocol):
    # -- server secrets --------------------------------------------------------------------
    async def server_secret(self, name: str, candidate: bytes) -> bytes:
        """The stored secret `name`; if there is none yet, store `candidate` first. Under
        concurrent first calls (several nodes) one value wins and every caller gets it."""

    # -- blocks ----------------------------------------------------------------------------
    async def add_block(self, blocker: str, blocked: str, now: int) -> None:
        """Record that `blocker` blocks `blocked` (idempotent)."""

    async def remove_block(self, blocker: str, blocked: str) -> bool:
        """False if there was no such block."""

    async def blocked_by(self, blocker: str) -> list[str]:
        """The handles `blocker` blocks, sorted."""

    async def is_blocked(self, blocker: str, blocked: str) -> bool: ...

    # -- blobs -----------------------------------------------------------------------------
    async def create_blob(self, blob: BlobRow) -> None:
        """Insert; raise Duplicate if the id exists."""

    async def get_blob(self, blob_id: str) -> BlobRow | None: ...

    async def record_download(self, blob_id: str, device_id: str) -> int:
        """Note a completed download by this device; return how many distinct devices have
        downloaded the blob (0 if the blob is gone)."""

    async def delete_blob(self, blob_id: str) -> bool:
        """Delete the row and its downloads; False if none."""

    async def delete_expired_blobs(self, now: int) -> list[str]:
        """Delete every blob row with expires_at <= now; return their ids (files are the
        caller's business)."""

    # -- reports ---------------------------------------------------------------------------
    async def create_report(self, report: ReportRow) -> None: ...

    async def list_reports(self) -> list[ReportRow]:
        """Every report, oldest first."""

    # -- envelope metadata log -------------------------------------------------------------
    async def envelope_log_of(self, handle: str) -> list[LogRow]:
        """Log rows where `handle` is the sender or the recipient, oldest first."""

    async def purge_envelope_log(self, before: int) -> int:
        """Delete the log rows with server_ts < before; how many."""

    async def count_envelopes(self) -> int:
        """Envelopes stored and not yet acknowledged, over every device (the /metrics queue depth)."""
