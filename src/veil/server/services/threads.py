"""Regular threads: readable on the server, fanned out to every device of both people.

Messages (text, image, video, sticker) are stored and fanned out; events (read, typing) are
only fanned out; an unsend deletes the message and fans out a notice. While A blocks B, B's
messages and events are kept from A's devices (B's messages are stored hidden from A, for
good), and B cannot start a thread with A. Messages matching the word list are flagged.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from veil.protocol.payload import Attachment, RegularMessage, encode_regular
from veil.protocol.wire import KIND_REGULAR
from veil.server.clock import Clock
from veil.server.errors import Conflict, Forbidden, NotFound
from veil.server.hub import Hub
from veil.server.services.wordlist import WordList
from veil.server.storage.base import DeviceRow, NewEnvelope, RegularRow, Store

__all__ = ["UNSEND_WINDOW_MS", "Content", "ThreadService", "ThreadSummary", "attachment_dict", "thread_key"]

log = logging.getLogger("veil.server.threads")

UNSEND_WINDOW_MS = 24 * 3600 * 1000
_PUBLIC_FIELDS = ("blob_id", "mime", "size", "width", "height", "duration_ms", "name")


def thread_key(a: str, b: str) -> str:
    """The same key whichever side asks: the two handles sorted, joined by '|'."""
    x, y = sorted((a, b))
    return f"{x}|{y}"


def attachment_dict(attachment_json: str | None) -> dict[str, object] | None:
    """The stored attachment as the API shows it (`{blob_id, mime, size, ...}`), or None."""
    return None if attachment_json is None else dict(json.loads(attachment_json))


def _attachment_json(a: Attachment | None) -> str | None:
    if a is None:
        return None
    return json.dumps({k: getattr(a, k) for k in _PUBLIC_FIELDS}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    peer: str
    last_ts: int


@dataclass(frozen=True, slots=True)
class Content:
    """What a regular message carries besides its ids."""

    text: str = ""
    kind: str = "text"
    attachment: Attachment | None = None
    sticker: str = ""


class ThreadService:
    def __init__(self, store: Store, clock: Clock, hub: Hub, words: WordList | None = None) -> None:
        self._store = store
        self._clock = clock
        self._hub = hub
        self._words = words

    async def _require_user(self, handle: str) -> None:
        if await self._store.get_account(handle) is None:
            raise NotFound(f"no user {handle!r}", "unknown_user")

    async def _blocked(self, sender: str, peer: str) -> bool:
        """Whether `peer` blocks `sender` (never true for a thread with oneself)."""
        return sender != peer and await self._store.is_blocked(peer, sender)

    async def _targets(self, sender: DeviceRow, peer: str, *, include_peer: bool,
                       include_self: bool = False) -> list[str]:
        # Every device, pending ones too: regular threads are readable by any logged-in device.
        handles = sorted({sender.handle, peer} if include_peer else {sender.handle})
        return [d.device_id for d in await self._store.devices_of(handles)
                if include_self or d.device_id != sender.device_id]

    @staticmethod
    def _envelopes(sender: DeviceRow, targets: Sequence[str], body: bytes, ts: int,
                   client_message_id: str) -> list[NewEnvelope]:
        return [NewEnvelope(device_id=t, kind=KIND_REGULAR, sender=sender.handle, sender_device=sender.device_id,
                            server_ts=ts, olm_type=0, body=body, client_message_id=client_message_id)
                for t in targets]

    async def send(self, sender: DeviceRow, peer: str, client_message_id: str,
                   content: Content | str) -> RegularRow:
        if isinstance(content, str):
            content = Content(text=content)
        await self._require_user(peer)
        key = thread_key(sender.handle, peer)
        if blocked := await self._blocked(sender.handle, peer):
            if not await self._store.thread_exists(key):
                raise Forbidden(f"you cannot start a thread with {peer!r}", "blocked")
        if content.attachment is not None:
            blob = await self._store.get_blob(content.attachment.blob_id)
            if blob is None or blob.expires_at <= self._clock.now_ms():
                raise NotFound("the attachment's blob is unknown or expired", "unknown_blob")
        now = self._clock.now_ms()
        message_id = secrets.token_hex(12)
        event = RegularMessage(message_id=message_id, sender=sender.handle, sender_device=sender.device_id,
                               to=peer, text=content.text, ts=now, client_message_id=client_message_id,
                               kind=content.kind, attachment=content.attachment, sticker=content.sticker)
        targets = await self._targets(sender, peer, include_peer=not blocked)
        envelopes = self._envelopes(sender, targets, encode_regular(event), now, client_message_id)
        flagged = self._words is not None and self._words.matches(content.text)
        row = RegularRow(id=0, message_id=message_id, thread_key=key, sender=sender.handle,
                         sender_device=sender.device_id, recipient=peer, text=content.text, ts=now,
                         client_message_id=client_message_id, kind=content.kind,
                         attachment_json=_attachment_json(content.attachment), sticker=content.sticker,
                         flagged=flagged, hidden_for=peer if blocked else None)
        stored, created = await self._store.store_regular(row, envelopes)
        if created:
            self._hub.notify(targets)
            log.info("regular message %s/%s -> %s%s", sender.handle, sender.device_id, peer,
                     " (flagged)" if flagged else "")
        return stored

    async def event(self, sender: DeviceRow, peer: str, kind: str, ref: str) -> None:
        """A read receipt or typing notice: fanned out, never stored in history."""
        await self._require_user(peer)
        now = self._clock.now_ms()
        event = RegularMessage(message_id=secrets.token_hex(12), sender=sender.handle,
                               sender_device=sender.device_id, to=peer, text="", ts=now, kind=kind, ref=ref)
        targets = await self._targets(sender, peer, include_peer=not await self._blocked(sender.handle, peer))
        await self._store.store_envelopes(self._envelopes(sender, targets, encode_regular(event), now, ""))
        self._hub.notify(targets)

    async def unsend(self, sender: DeviceRow, peer: str, message_id: str) -> None:
        key = thread_key(sender.handle, peer)
        row = await self._store.regular_by_message_id(message_id)
        if row is None or row.thread_key != key or row.hidden_for == sender.handle:
            raise NotFound(f"no message {message_id!r} in this thread", "unknown_message")
        if row.sender != sender.handle:
            raise Forbidden("only the sender can unsend a message", "not_yours")
        now = self._clock.now_ms()
        if now - row.ts > UNSEND_WINDOW_MS:
            raise Conflict("messages can be unsent for 24 hours only", "unsend_window_over")
        hidden = row.hidden_for == peer or await self._blocked(sender.handle, peer)
        event = RegularMessage(message_id=secrets.token_hex(12), sender=sender.handle,
                               sender_device=sender.device_id, to=peer, text="", ts=now, kind="unsend",
                               ref=message_id)
        targets = await self._targets(sender, peer, include_peer=not hidden, include_self=True)
        envelopes = self._envelopes(sender, targets, encode_regular(event), now, "")
        if not await self._store.delete_regular(message_id, envelopes):
            raise NotFound(f"no message {message_id!r} in this thread", "unknown_message")
        self._hub.notify(targets)
        log.info("regular message unsent by %s/%s", sender.handle, sender.device_id)

    async def threads(self, handle: str) -> list[ThreadSummary]:
        out = []
        for t in await self._store.threads_of(handle):
            a, _, b = t.thread_key.partition("|")
            out.append(ThreadSummary(peer=b if a == handle else a, last_ts=t.last_ts))
        return out

    async def history(self, handle: str, peer: str, before: str | None,
                      limit: int) -> tuple[list[RegularRow], bool]:
        """A page of up to `limit` messages older than `before`, ascending; and whether older exist.
        Messages hidden from `handle` (sent by someone they blocked at the time) are left out."""
        await self._require_user(peer)
        key = thread_key(handle, peer)
        before_id = None
        if before:
            anchor = await self._store.regular_by_message_id(before)
            if anchor is None or anchor.thread_key != key or anchor.hidden_for == handle:
                raise NotFound(f"no message {before!r} in this thread", "unknown_message")
            before_id = anchor.id
        rows = await self._store.regular_history(key, before_id=before_id, limit=limit + 1, viewer=handle)
        more = len(rows) > limit
        return list(reversed(rows[:limit])), more
