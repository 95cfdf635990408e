"""What the device library hands to front ends: messages, notices and thread summaries."""

from __future__ import annotations

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
    kind: str  # "text" or "notice"
    sender: str  # handle; "" for notices
    sender_device: str
    text: str
    sent_at: int  # ms since the epoch
    status: str = "sent"  # "sent", "received", "held" (waiting for identity confirmation)
    notice: str = ""  # notice code: new_device, identity_changed, decrypt_failed, ...

    @property
    def is_notice(self) -> bool:
        return self.kind == "notice"

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "peer": self.peer, "secret": self.is_secret, "kind": self.kind,
                "sender": self.sender, "sender_device": self.sender_device, "text": self.text,
                "sent_at": self.sent_at, "status": self.status, "notice": self.notice}

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Message:
        return cls(id=r["id"], peer=r["peer"], is_secret=r["secret"], kind=r["kind"], sender=r["sender"],
                   sender_device=r["sender_device"], text=r["text"], sent_at=r["sent_at"],
                   status=r.get("status", "sent"), notice=r.get("notice", ""))

    def to_json(self) -> dict[str, Any]:
        return self.to_record()


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    peer: str
    is_secret: bool
    last_ts: int
    last_text: str
