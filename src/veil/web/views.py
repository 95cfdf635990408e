"""What the templates show, computed from the device: message lines, thread lists, fingerprints.

Templates get plain dicts (never a Message with its franking opening or attachment key), and
the event stream compares fingerprints of the same data to decide when a page must refresh.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from veil.client.device import Device
from veil.client.inbox import UNSEND_WINDOW_MS
from veil.client.models import Message
from veil.client.timers import TIMERS

__all__ = ["TIMER_CHOICES", "fingerprint", "inbox_rows", "message_rows", "thread_facts", "timer_label"]

# Short labels for the timer picker and the thread header (the device library's are long words).
TIMER_CHOICES: list[tuple[int, str]] = [(0, "Off"), (5, "5s"), (30, "30s"), (60, "1m"), (300, "5m"),
                                        (3600, "1h"), (86400, "1d"), (604800, "7d")]
assert [s for s, _ in TIMER_CHOICES] == sorted(TIMERS), "keep the picker in step with the library's timers"


def timer_label(seconds: int) -> str:
    return dict(TIMER_CHOICES).get(seconds, f"{seconds}s")


def _clock_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M")


def _row(m: Message, me: str, now: int) -> dict[str, Any]:
    mine = m.sender == me
    sticker_id = m.sticker.split("/", 1)[1] if "/" in m.sticker else m.sticker
    att = m.attachment or {}
    return {
        "id": m.id, "kind": m.kind, "notice": m.notice, "text": m.text, "mine": mine,
        "sender": m.sender, "time": _clock_text(m.sent_at), "status": m.status,
        "sticker": sticker_id,
        "media": bool(att.get("file")) and m.kind in ("image", "video"),
        "mime": str(att.get("mime", "")), "width": int(att.get("width") or 0), "height": int(att.get("height") or 0),
        "name": str(att.get("name", "")),
        "timer": m.timer, "timer_label": timer_label(m.timer) if m.timer else "",
        "expires_at": m.expires_at,
        "can_unsend": mine and m.status != "held" and now - m.sent_at < UNSEND_WINDOW_MS,
        "seen": False,
    }


def message_rows(device: Device, peer: str, *, secret: bool) -> list[dict[str, Any]]:
    """The thread's lines, oldest first; "Seen" goes under the last of our messages the peer read."""
    now = device.clock()
    rows = [_row(m, device.handle, now) for m in device.messages(peer, secret=secret)]
    for row in reversed(rows):
        if row["mine"] and row["kind"] != "notice":
            row["seen"] = row["status"] == "read"
            break
    return rows


def inbox_rows(device: Device) -> list[dict[str, Any]]:
    return [{"peer": t.peer, "secret": t.is_secret, "last_text": t.last_text, "time": _clock_text(t.last_ts),
             "timer_label": timer_label(t.timer) if t.timer else ""} for t in device.threads()]


def thread_facts(device: Device, peer: str, *, secret: bool) -> dict[str, Any]:
    """Header facts that change while a thread is open: timer, typing, verification in progress."""
    ver = [v for v in device.verifications.active.values() if v.peer == peer]
    current = ver[-1] if ver else None
    return {
        "timer": device.timer(peer) if secret else 0,
        "typing": device.is_typing(peer, secret=secret),
        "verification": None if current is None else {
            "txn": current.txn, "state": current.state, "emoji": current.emoji},
        "verified": device.is_verified(peer),
    }


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
