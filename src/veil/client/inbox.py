"""Receiving: decrypt, verify, de-duplicate and apply envelopes to the local store.

A failure to decrypt, parse or verify one envelope becomes a notice line in its thread; it
never stops the envelopes around it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from veil.client import attachments, timers
from veil.client.errors import ClientError, IdentityChanged, ServerRejected, ServerUnavailable
from veil.client.models import Message
from veil.protocol.errors import DecryptionFailed, MalformedData, ProtocolError
from veil.protocol.franking import check_commitment
from veil.protocol.payload import RegularMessage, SecretPayload, decode_payload, decode_regular
from veil.protocol.wire import KIND_REGULAR, KIND_SECRET, Envelope

if TYPE_CHECKING:
    from veil.client.device import Device

__all__ = ["process"]

log = logging.getLogger("veil.client.inbox")

UNSEND_WINDOW_MS = 24 * 3600 * 1000
_VISIBLE = ("text", "image", "video", "sticker")


async def process(device: Device, envelopes: list[Envelope]) -> list[int]:
    """Decrypt and store envelopes; return the ids that may now be acknowledged."""
    done: list[int] = []
    async with device.lock:
        for env in envelopes:
            try:
                if env.kind == KIND_SECRET:
                    await _receive_secret(device, env)
                elif env.kind == KIND_REGULAR:
                    await _receive_regular(device, env)
                else:
                    log.warning("envelope %d has unknown kind %d; dropped", env.id, env.kind)
            except ServerUnavailable:
                break  # keep the rest queued: they come again
            done.append(env.id)
        device.store.commit()  # one transaction per batch: messages, seen digests, sessions, account
    return done


async def _receive_regular(device: Device, env: Envelope) -> None:
    try:
        m = decode_regular(env.body)
    except MalformedData:
        device.notice(env.sender, "unreadable", f"A message from {env.sender} could not be read.", secret=False)
        return
    await apply_regular(device, m)


async def apply_regular(device: Device, m: RegularMessage) -> None:
    peer = m.to if m.sender == device.handle else m.sender
    if m.kind == "typing":
        device.typing[(peer, False)] = device.clock() + 6000
        return
    if m.kind == "read":
        timers.mark_own_read(device, m.ref.split(","))
        return
    if m.kind == "unsend":
        _remove(device, m.ref, peer, secret=False, by=m.sender)
        return
    local = None
    if m.attachment is not None:
        try:
            local = await attachments.fetch_regular(device, m.attachment)
        except ClientError:
            device.notice(peer, "attachment_failed", f"A photo or video from {m.sender} could not be downloaded.",
                          secret=False)
    device.store_message(Message(id=m.message_id, peer=peer, is_secret=False, kind=m.kind, sender=m.sender,
                                 sender_device=m.sender_device, text=m.text, sent_at=m.ts, sticker=m.sticker,
                                 attachment=local,
                                 status="sent" if m.sender == device.handle else "received"))


async def _receive_secret(device: Device, env: Envelope) -> None:
    sender = env.sender
    if device.identity is None:
        return  # not linked yet: nothing for this device can be trusted
    # The look-up may go to the server and save what it learnt with a commit: the envelope is
    # marked seen only after it, so that commit can never hold the mark without the message
    # (and a look-up that fails leaves the envelope unmarked, to come again).
    try:
        entry = (await device.directory.get(sender)).entry(env.sender_device)
        if entry is None:
            entry = (await device.directory.get(sender, refresh=True)).entry(env.sender_device)
    except (IdentityChanged, ServerRejected):
        entry = None
    if not device.store.mark_seen(hashlib.sha256(env.body).digest(), commit=False):
        log.info("envelope %d repeats one already processed; ignored", env.id)
        return
    if entry is None:
        device.notice(sender, "unverified_sender",
                      f"A message from {sender} was dropped: it came from a device ({env.sender_device}) "
                      f"that is not in {sender}'s signed device list.")
        return
    try:
        plaintext = device.sessions.decrypt(entry.curve25519, env.olm_type, env.body)
    except DecryptionFailed:
        device.notice(sender, "decrypt_failed", f"A message from {sender} could not be decrypted.")
        return
    try:
        p = decode_payload(plaintext)
        check_commitment(p.franking_key, plaintext, env.commitment)
    except MalformedData:
        device.notice(sender, "unreadable", f"A message from {sender} could not be read.")
        return
    except ProtocolError:
        device.notice(sender, "unverified_sender", f"A message from {sender} failed its integrity check.")
        return
    if p.sender != sender or p.sender_device != env.sender_device or (
            sender != device.handle and p.to != device.handle):
        device.notice(sender, "unverified_sender",
                      f"A message claiming to be from {p.sender} could not be verified and was dropped.")
        return
    opening = {"payload": plaintext, "commitment": env.commitment, "tag": env.franking_tag,
               "server_ts": env.server_ts, "sender_device": env.sender_device,
               "recipient_device": device.device_id}
    await _apply_secret(device, p, opening)


async def _apply_secret(device: Device, p: SecretPayload, opening: dict[str, object]) -> None:
    me = device.handle
    peer = p.to if p.sender == me else p.sender
    who = "You" if p.sender == me else p.sender
    if p.kind in _VISIBLE:
        if device.store.get(f"unsent:{p.message_id}"):
            return  # its unsend overtook it
        local = None
        if p.attachment is not None:
            try:
                local = await attachments.fetch_secret(device, p.attachment)
            except ClientError:
                device.notice(peer, "attachment_failed",
                              f"A photo or video from {p.sender} could not be downloaded or failed its check.")
                return
        expires = p.sent_at + p.timer * 1000 if (p.timer and p.sender == me) else 0
        device.store_message(Message(
            id=p.message_id, peer=peer, is_secret=True, kind=p.kind, sender=p.sender,
            sender_device=p.sender_device, text=p.body, sent_at=p.sent_at, sticker=p.sticker,
            attachment=local, timer=p.timer, expires_at=expires,
            status="sent" if p.sender == me else "received",
            franking=opening if p.sender != me else None))
        if expires:
            timers.schedule(device, p.message_id, expires)
    elif p.kind == "timer":
        try:
            seconds = timers.parse_timer(p.body)
        except ValueError:
            return
        timers.set_thread_timer(device, peer, seconds)
        device.notice(peer, "timer", timers.timer_notice(who, seconds), dedupe=p.message_id)
    elif p.kind == "unsend":
        original = device.store.get_message(p.ref)
        if original is not None and (original["sender"] != p.sender
                                     or p.sent_at - original["sent_at"] > UNSEND_WINDOW_MS):
            return  # only the sender may unsend, and only within the window
        device.store.put(f"unsent:{p.ref}", True, commit=False)
        _remove(device, p.ref, peer, secret=True, by=p.sender)
    elif p.kind == "read":
        if p.sender != me:
            timers.mark_own_read(device, p.body.split(","))
    elif p.kind == "typing":
        if p.sender != me:
            device.typing[(peer, True)] = device.clock() + 6000
    elif p.kind == "screenshot":
        device.notice(peer, "screenshot", f"{who} took a screenshot.", dedupe=p.message_id)
    elif p.kind == "sas":
        await device.verifications.receive(p)


def _remove(device: Device, message_id: str, peer: str, *, secret: bool, by: str) -> None:
    record = device.store.get_message(message_id)
    if record is None or record.get("peer") != peer or record.get("is_secret") != secret:
        return
    attachments.delete_local(device, record.get("attachment"))
    device.store.delete_message(message_id, commit=False)
    who = "You" if by == device.handle else by
    device.notice(peer, "unsent", f"{who} unsent a message.", secret=secret, dedupe="unsend-" + message_id)
