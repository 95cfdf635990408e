"""Disappearing messages: the per-thread timer, read marks, and expiry.

The countdown starts at sending on the sender's devices and when a recipient's device shows
the message. Expired messages are deleted from the store, with their attachment files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veil.client import attachments
from veil.client.models import thread_key

if TYPE_CHECKING:
    from veil.client.device import Device

__all__ = ["TIMERS", "describe", "expire", "mark_read", "parse_timer", "schedule", "set_thread_timer",
           "thread_timer", "timer_notice"]

# seconds → label: the choices a person gets (0 = off)
TIMERS: dict[int, str] = {0: "off", 5: "5 seconds", 30: "30 seconds", 60: "1 minute", 300: "5 minutes",
                          3600: "1 hour", 86400: "1 day", 604800: "7 days"}
_ALIASES = {"off": 0, "5s": 5, "30s": 30, "1m": 60, "5m": 300, "1h": 3600, "1d": 86400, "7d": 604800}


def parse_timer(text: str) -> int:
    """'5s', '1m', '300', 'off' → seconds; ValueError for anything not offered."""
    t = text.strip().lower()
    seconds = _ALIASES[t] if t in _ALIASES else int(t) if t.isdigit() else -1
    if seconds not in TIMERS:
        raise ValueError(f"disappearing messages can be {', '.join(_ALIASES)}; not {text!r}")
    return seconds


def describe(seconds: int) -> str:
    return TIMERS.get(seconds, f"{seconds} seconds")


def timer_notice(who: str, seconds: int) -> str:
    if seconds == 0:
        return f"{who} turned off disappearing messages."
    return f"{who} set disappearing messages to {describe(seconds)}."


def thread_timer(device: Device, peer: str) -> int:
    cached = device.timer_cache.get(peer)  # read per send: kept in memory, written through
    if cached is None:
        state = device.store.get("tstate:" + thread_key(peer, True)) or {}
        cached = device.timer_cache[peer] = int(state.get("timer", 0))
    return cached


def set_thread_timer(device: Device, peer: str, seconds: int) -> None:
    key = "tstate:" + thread_key(peer, True)
    state = dict(device.store.get(key) or {})
    state["timer"] = seconds
    device.store.put(key, state, commit=False)
    device.timer_cache[peer] = seconds


def schedule(device: Device, message_id: str, expires_at: int) -> None:
    due: dict[str, int] = dict(device.store.get("expiries") or {})
    due[message_id] = expires_at
    device.store.put("expiries", due, commit=False)


def mark_read(device: Device, peer: str, *, secret: bool) -> list[str]:
    """The thread was shown: start countdowns of received messages; return the ids newly read."""
    now = device.clock()
    newly: list[str] = []
    for r in device.store.messages(thread_key(peer, secret)):
        if r["kind"] == "notice" or r["sender"] == device.handle or r.get("read_at"):
            continue
        update: dict[str, Any] = {"read_at": now}
        if r.get("timer"):
            update["expires_at"] = now + int(r["timer"]) * 1000
            schedule(device, r["id"], update["expires_at"])
        device.store.update_message(r["id"], {**r, **update}, commit=False)
        newly.append(r["id"])
    device.store.commit()
    return newly


def mark_own_read(device: Device, ids: list[str]) -> None:
    """The other person read these of our messages."""
    for mid in ids:
        r = device.store.get_message(mid)
        if r is not None and r["sender"] == device.handle and r.get("status") != "read":
            device.store.update_message(mid, {**r, "status": "read"}, commit=False)


def expire(device: Device, now: int | None = None) -> int:
    """Delete every message whose time is up, with its files; return how many went."""
    now = device.clock() if now is None else now
    due: dict[str, int] = dict(device.store.get("expiries") or {})
    gone = [mid for mid, at in due.items() if at <= now]
    if not gone:
        return 0
    for mid in gone:
        record = device.store.get_message(mid)
        if record is not None:
            attachments.delete_local(device, record.get("attachment"))
            device.store.delete_message(mid, commit=False)
        del due[mid]
    device.store.put("expiries", due, commit=False)
    device.store.commit()
    device.store.checkpoint()  # push the deletions out of the WAL file too
    return len(gone)
