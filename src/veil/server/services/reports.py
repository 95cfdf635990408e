"""Abuse reports. Secret threads: the reporter reveals decrypted payloads and the server checks,
with message franking (`veil.protocol.franking`), that it really relayed exactly those from that
sender to the reporter at that time. Regular threads: the server already holds the messages.

Each revealed secret message must pass, in this order:

    recipient      the reporter is the envelope's recipient
    sender         the sender is the reported peer (or the reporter: context from own devices)
    tag            verify_tag(server key, tag, commitment, sender, device, recipient, device, ts)
    payload        the payload bytes parse as a SecretPayload
    commitment     check_commitment(payload.franking_key, payload, commitment)
    payload_sender payload.sender / sender_device are the envelope's
    attachment     with an attachment: its plaintext (a blob the reporter uploaded) re-encrypts
                   under the payload's key (`attachments.encrypt_bytes`) to the payload's digest

A failure stores nothing and answers 400 `report_invalid` naming the message and the check;
the log gets one line without content.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veil.protocol.attachments import encrypt_bytes
from veil.protocol.encoding import b64encode
from veil.protocol.errors import FrankingInvalid, MalformedData
from veil.protocol.franking import check_commitment, verify_tag
from veil.protocol.payload import SecretPayload, decode_payload
from veil.server.clock import Clock
from veil.server.errors import BadRequest, ServerError
from veil.server.services.blobs import BlobService
from veil.server.services.franking import Franker
from veil.server.services.threads import attachment_dict, thread_key
from veil.server.storage.base import DeviceRow, RegularRow, Store
from veil.server.storage.base_extras import ReportRow

__all__ = ["ReportService", "RevealedMessage"]

log = logging.getLogger("veil.server.reports")

VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class RevealedMessage:
    """One decrypted secret message as the reporter hands it over."""

    payload: bytes
    commitment: bytes
    franking_tag: bytes
    sender: str
    sender_device: str
    recipient: str
    recipient_device: str
    server_ts: int
    attachment_plaintext_blob_id: str | None = None


class _Failed(Exception):
    def __init__(self, check: str, why: str) -> None:
        super().__init__(why)
        self.check = check
        self.why = why


def _reject(reporter: str, index: int, failed: _Failed) -> ServerError:
    log.info("report by %s rejected: message %d failed the %s check", reporter, index, failed.check)
    return BadRequest(f"messages[{index}]: {failed.why}", "report_invalid",
                      extra={"index": index, "failed": failed.check})


def _reencrypts_to(key: bytes, plaintext: bytes, digest: bytes) -> bool:
    try:
        ciphertext = encrypt_bytes(key, plaintext)
    except ValueError:  # a key of the wrong length
        return False
    return hmac.compare_digest(hashlib.sha256(ciphertext).digest(), digest)


class ReportService:
    def __init__(self, store: Store, clock: Clock, franker: Franker, blobs: BlobService) -> None:
        self._store = store
        self._clock = clock
        self._franker = franker
        self._blobs = blobs

    async def _check(self, me: DeviceRow, peer: str, key: bytes, m: RevealedMessage) -> dict[str, Any]:
        """Run every check on one message; return what it reveals, or raise _Failed."""
        if m.recipient != me.handle:
            raise _Failed("recipient", "you are not the recipient of this message")
        if m.sender not in (peer, me.handle):
            raise _Failed("sender", f"the message was not sent by {peer!r}")
        try:
            verify_tag(key, m.franking_tag, m.commitment, m.sender, m.sender_device, m.recipient,
                       m.recipient_device, m.server_ts)
        except FrankingInvalid:
            raise _Failed("tag", "the franking tag does not match this sender, recipient and time") from None
        try:
            payload = decode_payload(m.payload)
        except MalformedData:
            raise _Failed("payload", "the payload is not a secret message") from None
        try:
            check_commitment(payload.franking_key, m.payload, m.commitment)
        except FrankingInvalid:
            raise _Failed("commitment", "the payload does not match its commitment "
                                        "(altered payload or wrong franking key)") from None
        if (payload.sender, payload.sender_device) != (m.sender, m.sender_device):
            raise _Failed("payload_sender", "the payload names another sender than the envelope")
        revealed = _revealed(payload, m)
        if payload.attachment is not None:
            revealed["attachment"] = await self._check_attachment(me, payload, m)
        return revealed

    async def _check_attachment(self, me: DeviceRow, payload: SecretPayload,
                                m: RevealedMessage) -> dict[str, Any]:
        att = payload.attachment
        assert att is not None
        if not m.attachment_plaintext_blob_id:
            raise _Failed("attachment", "the message has an attachment but no plaintext was given")
        try:
            blob = await self._blobs.get(m.attachment_plaintext_blob_id)
        except ServerError:
            raise _Failed("attachment", "the attachment plaintext blob is unknown or expired") from None
        if blob.uploader != me.handle:
            raise _Failed("attachment", "the attachment plaintext blob was not uploaded by you")
        plaintext = await self._blobs.read_all(blob)
        plaintext_sha256 = await asyncio.to_thread(lambda: b64encode(hashlib.sha256(plaintext).digest()))
        if not await asyncio.to_thread(_reencrypts_to, att.key, plaintext, att.digest):
            raise _Failed("attachment", "the attachment plaintext does not re-encrypt to the "
                                        "payload's digest")
        return {"mime": att.mime, "size": att.size, "name": att.name, "width": att.width,
                "height": att.height, "duration_ms": att.duration_ms, "plaintext_blob_id": blob.blob_id,
                "plaintext_sha256": plaintext_sha256}

    async def report_secret(self, me: DeviceRow, peer: str, reason: str,
                            messages: Sequence[RevealedMessage]) -> ReportRow:
        key = await self._franker.key()
        revealed = []
        for i, m in enumerate(messages):
            try:
                revealed.append(await self._check(me, peer, key, m))
            except _Failed as failed:
                raise _reject(me.handle, i, failed) from None
        return await self._store_report(me, peer, "secret", reason, revealed)

    async def report_regular(self, me: DeviceRow, peer: str, reason: str,
                             message_ids: Sequence[str]) -> ReportRow:
        key = thread_key(me.handle, peer)
        revealed = []
        for i, message_id in enumerate(message_ids):
            row = await self._store.regular_by_message_id(message_id)
            if row is None or row.thread_key != key or row.hidden_for == me.handle:
                raise _reject(me.handle, i, _Failed("message", f"no message {message_id!r} in your "
                                                               f"thread with {peer!r}"))
            revealed.append(regular_json(row))
        return await self._store_report(me, peer, "regular", reason, revealed)

    async def _store_report(self, me: DeviceRow, peer: str, kind: str, reason: str,
                            revealed: list[dict[str, Any]]) -> ReportRow:
        row = ReportRow(report_id=secrets.token_hex(8), created_at=self._clock.now_ms(), reporter=me.handle,
                        reporter_device=me.device_id, peer=peer, kind=kind, verdict=VERIFIED, reason=reason,
                        content_json=json.dumps(revealed, separators=(",", ":")))
        await self._store.create_report(row)
        log.info("report %s by %s about %s: %d %s messages", row.report_id, me.handle, peer, len(revealed),
                 kind)
        return row


def _revealed(p: SecretPayload, m: RevealedMessage) -> dict[str, Any]:
    return {"message_id": p.message_id, "sender": m.sender, "sender_device": m.sender_device,
            "recipient": m.recipient, "recipient_device": m.recipient_device, "server_ts": m.server_ts,
            "sent_at": p.sent_at, "kind": p.kind, "text": p.body, "sticker": p.sticker, "ref": p.ref,
            "attachment": None}


def regular_json(r: RegularRow) -> dict[str, Any]:
    """A regular message as reports and exports show it."""
    return {"message_id": r.message_id, "sender": r.sender, "sender_device": r.sender_device,
            "recipient": r.recipient, "ts": r.ts, "kind": r.kind, "text": r.text,
            "attachment": attachment_dict(r.attachment_json), "sticker": r.sticker, "flagged": r.flagged}
