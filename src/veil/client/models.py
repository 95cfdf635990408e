"""What the device library hands to front ends: messages, notices and thread summaries."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["Message", "ThreadSummary", "thread_key"]


def thread_key(peer: str, secret: bool) -> str:
    return f"{'secret' if secret else 'regular'}:{peer}"


@dataclass(frozen=True, slots=True)
class Message:
    """One line of a thread: a message someone sent, or a system notice (`kind == "notice"`)."""

    id: str
    peer: str
    is_secret: bool
    kind: str  # "text", "image", "video", "sticker" or "notice"
    sender: str  # handle; "" for notices
    sender_device: str
    text: str
    sent_at: int  # ms since the epoch
    status: str = "sent"  # "sent", "received", "held" (waiting for identity confirmation), "read"
    notice: str = ""  # notice code: new_device, identity_changed, decrypt_failed, ...
    sticker: str = ""  # "pack/id"
    attachment: dict[str, Any] | None = None  # mime, size, width, height, duration_ms, name, file, ...
    timer: int = 0  # disappearing-message timer in force when it was sent (seconds)
    read_at: int = 0  # when this device showed it (recipient side), ms
    expires_at: int = 0  # when it disappears from this device, ms; 0 = never / not started
    franking: dict[str, Any] | None = None  # the opening kept for abuse reports (secret, received)

    @property
    def is_notice(self) -> bool:
        return self.kind == "notice"

    def to_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _MESSAGE_FIELDS}

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Message:
        return cls(**{k: v for k, v in r.items() if k in _MESSAGE_FIELD_SET})

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe view for front ends: no franking opening, no keys, no thumbnails."""
        out = self.to_record()
        out.pop("franking")
        out["secret"] = out.pop("is_secret")
        if self.attachment is not None:
            out["attachment"] = {k: v for k, v in self.attachment.items()
                                 if k not in ("key", "digest", "thumbnail", "file")}
        return out


_MESSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Message))
_MESSAGE_FIELD_SET = frozenset(_MESSAGE_FIELDS)


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    peer: str
    is_secret: bool
    last_ts: int
    last_text: str
    timer: int = 0
