"""Abuse reports. Secret messages are revealed with their franking openings so the server can
check them without being able to read anything else; regular ones are named by id."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.client import attachments
from veil.client.errors import UsageError
from veil.client.models import thread_key
from veil.protocol.encoding import b64encode

if TYPE_CHECKING:
    from veil.client.device import Device

__all__ = ["report"]


def _choose(device: Device, peer: str, secret: bool, last: int, ids: list[str]) -> list[dict[str, Any]]:
    records = [r for r in device.store.messages(thread_key(peer, secret))
               if r["kind"] != "notice" and r["sender"] == peer]
    if ids:
        wanted = set(ids)
        chosen = [r for r in records if r["id"] in wanted]
        if len(chosen) != len(wanted):
            raise UsageError("some of those messages are not messages from " + peer + " on this device")
        return chosen
    if last < 1:
        raise UsageError("say which messages to report (--last N or --message ID)")
    return records[-last:]


async def report(device: Device, peer: str, *, secret: bool, last: int = 0, message_ids: list[str] | None = None,
                 reason: str = "") -> dict[str, Any]:
    chosen = _choose(device, peer, secret, last, list(message_ids or []))
    if not chosen:
        raise UsageError(f"there is nothing from {peer} to report in this thread")
    if not secret:
        return await device.api.call("POST", "/v1/reports", {"peer": peer, "secret": False, "reason": reason,
                                                             "message_ids": [r["id"] for r in chosen]})
    items = []
    for r in chosen:
        f = r.get("franking")
        if not f:
            raise UsageError("a chosen message has no franking opening on this device")
        item: dict[str, Any] = {
            "payload": b64encode(bytes(f["payload"])), "commitment": b64encode(bytes(f["commitment"])),
            "franking_tag": b64encode(bytes(f["tag"])), "sender": r["sender"],
            "sender_device": f["sender_device"], "recipient": device.handle,
            "recipient_device": f["recipient_device"], "server_ts": int(f["server_ts"])}
        if r.get("attachment"):
            with tempfile.TemporaryDirectory() as tmp:
                plain = attachments.save(device, r["attachment"], Path(tmp) / "reported")
                uploaded = await device.api.upload_blob(plain)
            item["attachment_plaintext_blob_id"] = str(uploaded["blob_id"])
        items.append(item)
    return await device.api.call("POST", "/v1/reports", {"peer": peer, "secret": True, "reason": reason,
                                                         "messages": items})
