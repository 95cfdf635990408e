"""Sending: regular messages through the server, secret payloads encrypted per device.

Every secret payload carries a fresh franking key; its commitment travels beside the
ciphertext so the recipient can later report it verifiably.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

from veil.client import timers
from veil.client.errors import IdentityChanged, ServerRejected, ServerUnavailable, UsageError
from veil.client.models import Message
from veil.protocol.encoding import b64encode
from veil.protocol.franking import commit, new_franking_key
from veil.protocol.payload import SecretPayload, decode_payload, encode_payload
from veil.protocol.wire import DeviceRef, Send, SendEnvelope

if TYPE_CHECKING:
    from veil.client.device import Device

__all__ = ["confirm_identity", "deliver_secret", "new_payload", "own_secret_message", "send_regular", "send_secret"]


def new_payload(device: Device, peer: str, kind: str, **fields: Any) -> SecretPayload:
    return SecretPayload(message_id=uuid.uuid4().hex, sender=device.handle, sender_device=device.device_id,
                         to=peer, sent_at=device.clock(), kind=kind, franking_key=new_franking_key(),
                         **fields)


async def send_regular(device: Device, peer: str, *, text: str = "", kind: str = "text",
                       attachment: dict[str, Any] | None = None, sticker: str = "",
                       local_attachment: dict[str, Any] | None = None) -> Message:
    body: dict[str, Any] = {"client_message_id": uuid.uuid4().hex, "text": text, "kind": kind}
    if attachment is not None:
        body["attachment"] = attachment
    if sticker:
        body["sticker"] = sticker
    r = await device.api.call("POST", f"/v1/threads/{peer}/messages", body)
    m = Message(id=str(r["message_id"]), peer=peer, is_secret=False, kind=kind, sender=device.handle,
                sender_device=device.device_id, text=text, sent_at=int(r["server_ts"]), sticker=sticker,
                attachment=local_attachment)
    async with device.lock:
        device.store_message(m, commit=True)
    return m


async def send_secret(device: Device, payload: SecretPayload, *, show: Message | None = None) -> int:
    """Deliver a payload; store `show` in the thread (held if the peer's identity changed)."""
    if not device.is_linked:
        raise UsageError("this device is not linked yet: link it from one of your other devices first")
    peer = payload.to
    async with device.lock:
        device.context_peer = peer
        try:
            ts = await deliver_secret(device, payload)
        except IdentityChanged:
            if show is not None:
                held = dict(device.store.get(f"held:{peer}") or {})
                held[payload.message_id] = encode_payload(payload)
                device.store.put(f"held:{peer}", held, commit=False)
                device.store_message(dataclasses.replace(show, status="held"))
                device.store.commit()
            raise
        finally:
            device.context_peer = ""
        if show is not None:
            device.store_message(show)
            if show.expires_at:  # the sender's countdown starts at sending
                timers.schedule(device, show.id, show.expires_at)
            device.store.commit()
    return ts


async def deliver_secret(device: Device, payload: SecretPayload) -> int:
    """Encrypt `payload` for every trusted device of both people and hand it to the server."""
    peer = payload.to
    plaintext = encode_payload(payload)
    commitment = commit(payload.franking_key, plaintext)
    for attempt in range(4):
        them = await device.directory.get(peer, refresh=attempt > 0)
        mine = await device.directory.get(device.handle, refresh=attempt > 0)
        targets = [(peer, d) for d in them.devices]
        targets += [(device.handle, d) for d in mine.devices if d.device_id != device.device_id]
        failed = await device.sessions.ensure(device.api, targets)
        envelopes = []
        for handle, d in targets:
            if (handle, d.device_id) in failed:
                continue
            olm_type, body = device.sessions.encrypt(d.curve25519, plaintext)
            envelopes.append({"handle": handle, "device_id": d.device_id, "olm_type": olm_type, "body": body})
        device.store.commit()  # session state advanced: keep it before the network call
        skipped = [{"handle": peer, "device_id": x} for x in them.untrusted]
        skipped += [{"handle": device.handle, "device_id": x} for x in mine.untrusted if x != device.device_id]
        skipped += [{"handle": h, "device_id": x} for h, x in failed]
        batch = {"client_message_id": f"{payload.message_id}.{attempt}", "recipient": peer,
                 "envelopes": envelopes, "skipped": skipped, "commitment": commitment}
        try:
            return await _send_batch(device, batch)
        except ServerRejected as exc:
            if exc.status == 409 and exc.code == "device_mismatch" and attempt < 3:
                continue
            raise
    raise ServerUnavailable("the server kept disagreeing about the device lists")  # pragma: no cover


_STATUS = {"device_mismatch": 409, "unknown_user": 404, "blocked": 403, "unauthorized": 401}


async def _send_batch(device: Device, batch: dict[str, Any]) -> int:
    """Hand one batch to the server: on the open stream when there is one (a binary Send frame,
    answered after commit), else over REST. Both share the idempotency key, so a stream that
    drops mid-send falls back to REST without storing the batch twice."""
    link = device.stream_link
    if link is not None:
        frame = Send(client_message_id=batch["client_message_id"], recipient=batch["recipient"],
                     envelopes=[SendEnvelope(handle=e["handle"], device_id=e["device_id"], olm_type=e["olm_type"],
                                             body=e["body"]) for e in batch["envelopes"]],
                     skipped=[DeviceRef(handle=x["handle"], device_id=x["device_id"]) for x in batch["skipped"]],
                     commitment=batch["commitment"])
        try:
            result = await link.send(frame)
        except ServerUnavailable:
            pass  # fall back to REST below
        else:
            if result.ok:
                return result.server_ts
            refs: dict[str, object] = {
                "missing": [{"handle": r.handle, "device_id": r.device_id} for r in result.missing],
                "stale": [{"handle": r.handle, "device_id": r.device_id} for r in result.stale]}
            raise ServerRejected(_STATUS.get(result.error, 400), result.error, result.message, refs)
    body = {**batch, "commitment": b64encode(batch["commitment"]),
            "envelopes": [{**e, "body": b64encode(e["body"])} for e in batch["envelopes"]]}
    r = await device.api.send(body)
    return int(r["server_ts"])


async def confirm_identity(device: Device, peer: str) -> int:
    """Accept `peer`'s new identity key and send the messages held for them; return how many."""
    async with device.lock:
        if not device.directory.confirm_identity(peer):
            return 0
        device.notice(peer, "identity_confirmed", f"You accepted {peer}'s new identity key.")
        held: dict[str, bytes] = dict(device.store.get(f"held:{peer}") or {})
        device.store.commit()
        sent = 0
        for mid, raw in held.items():
            device.context_peer = peer
            try:
                await deliver_secret(device, decode_payload(raw))
            finally:
                device.context_peer = ""
            record = device.store.get_message(mid)
            if record is not None and record.get("peer") == peer:
                device.store.update_message(mid, {**record, "status": "sent"})
            sent += 1
        device.store.delete(f"held:{peer}")
    return sent


def own_secret_message(device: Device, payload: SecretPayload, **fields: Any) -> Message:
    """The sender's own copy of a secret message, with its countdown started at sending."""
    expires = payload.sent_at + payload.timer * 1000 if payload.timer else 0
    return Message(id=payload.message_id, peer=payload.to, is_secret=True, kind=payload.kind,
                   sender=device.handle, sender_device=device.device_id, text=payload.body,
                   sent_at=payload.sent_at, sticker=payload.sticker, timer=payload.timer,
                   expires_at=expires, **fields)

