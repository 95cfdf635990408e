"""Verifying a contact: safety numbers (compare or scan a QR) and interactive emoji (SAS).

A contact is marked verified only by an explicit step of the user; a verified contact whose
identity key changes drops back to unverified (see directory.py).

Emoji verification runs over the secret thread itself (payload kind "sas", body JSON):
    starter                         responder (one of the peer's devices)
    start{txn, key, device}  ──▶    accept(): key{txn, key, device}
    receive key → 7 emoji           receive start → 7 emoji
    confirm(): mac{txn, mac}  ◀──▶  confirm(): mac{txn, mac}
    verify their MAC of their identity key → contact verified
Any side may send cancel{txn}; a mismatch marks nothing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import TYPE_CHECKING, Any

from veil.client import sending
from veil.client.errors import UsageError
from veil.protocol.encoding import b64decode
from veil.protocol.errors import ProtocolError
from veil.protocol.payload import SecretPayload
from veil.protocol.safety import QR_VERSION, format_groups, qr_payload, safety_number, verify_qr_payload
from veil.protocol.sas import SasState, SasVerification

if TYPE_CHECKING:
    from veil.client.device import Device

__all__ = ["Verification", "Verifications"]


class Verification:
    """One emoji verification with one contact, as this device sees it."""

    def __init__(self, owner: Verifications, peer: str, txn: str, *, we_started: bool) -> None:
        self._owner = owner
        self.peer = peer
        self.txn = txn
        self.we_started = we_started
        self.sas = SasVerification()
        self.their_key = ""
        self.their_device = ""
        self.emoji: list[tuple[str, str]] = []
        self.verified = False
        self.cancelled = False
        self._their_mac: str | None = None
        self._changed = asyncio.Event()

    @property
    def state(self) -> str:
        if self.verified:
            return "verified"
        if self.cancelled:
            return "cancelled"
        if self.emoji:
            return "confirmed" if self.sas.state == SasState.CONFIRMED else "compare"
        return "waiting" if self.we_started else "incoming"

    def _info(self) -> str:
        starter, responder = ((self._owner.me, self._owner.device.device_id), (self.peer, self.their_device))
        if not self.we_started:
            starter, responder = responder, starter
        return f"VEIL_SAS_V1|{self.txn}|{starter[0]}|{starter[1]}|{responder[0]}|{responder[1]}"

    def _touch(self) -> None:
        self._changed.set()

    async def wait(self, *states: str, timeout: float = 30.0) -> str:
        """Wait until the verification reaches one of `states`."""
        async def loop() -> str:
            while self.state not in states:
                self._changed.clear()
                await self._changed.wait()
            return self.state

        return await asyncio.wait_for(loop(), timeout)

    async def accept(self) -> list[tuple[str, str]]:
        """Answer an incoming request: send our key; return the emoji to compare."""
        if self.we_started or self.emoji or self.cancelled:
            raise UsageError("this verification cannot be accepted now")
        self.emoji = self.sas.receive_key(self.their_key, we_started=False, info=self._info())
        await self._owner.send(self.peer, {"t": "key", "txn": self.txn, "key": self.sas.public_key,
                                           "device": self._owner.device.device_id})
        self._touch()
        return self.emoji

    async def confirm(self) -> None:
        """The emoji match on both screens: vouch for our identity key, check theirs."""
        if not self.emoji or self.cancelled:
            raise UsageError("there are no emoji to confirm yet")
        self.sas.confirm()
        identity = self._owner.device._identity_public()
        mac = self.sas.mac("identity", identity, f"VEIL_SAS_MAC|{self.txn}|{self._owner.me}")
        await self._owner.send(self.peer, {"t": "mac", "txn": self.txn, "mac": mac})
        self._check_mac()
        self._touch()

    async def cancel(self) -> None:
        """The emoji differ (or the user gave up): nothing is marked verified."""
        if not self.cancelled and not self.verified:
            self.sas.cancel()
            self.cancelled = True
            await self._owner.send(self.peer, {"t": "cancel", "txn": self.txn})
            self._touch()

    def _check_mac(self) -> None:
        if self._their_mac is None or self.sas.state != SasState.CONFIRMED:
            return
        pinned = str(self._owner.device.directory.peer_record(self.peer).get("identity_key", ""))
        try:
            self.sas.verify_mac("identity", pinned, f"VEIL_SAS_MAC|{self.txn}|{self.peer}", self._their_mac)
        except ProtocolError:
            self.cancelled = True
            return
        self._owner.device.mark_verified(self.peer, how="emoji")
        self.verified = True


class Verifications:
    """All emoji verifications of one device, and the safety-number helpers."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.active: dict[str, Verification] = {}

    @property
    def me(self) -> str:
        return self.device.handle

    async def send(self, peer: str, body: dict[str, str]) -> None:
        p = sending.new_payload(self.device, peer, "sas", body=json.dumps(body))
        await sending.send_secret(self.device, p)

    async def start(self, peer: str) -> Verification:
        """Ask `peer` (all their online devices) for an emoji verification."""
        v = Verification(self, peer, secrets.token_hex(8), we_started=True)
        self.active[v.txn] = v
        await self.send(peer, {"t": "start", "txn": v.txn, "key": v.sas.public_key,
                               "device": self.device.device_id})
        return v

    def incoming(self) -> list[Verification]:
        return [v for v in self.active.values() if v.state == "incoming"]

    async def receive(self, p: SecretPayload) -> None:
        """Apply a "sas" payload (called with the device lock held; never sends from here)."""
        if p.sender == self.me:
            return  # our own other device's verification traffic
        try:
            body: dict[str, Any] = json.loads(p.body)
            kind, txn = str(body["t"]), str(body["txn"])
        except (ValueError, KeyError, TypeError):
            return
        v = self.active.get(txn)
        if kind == "start" and v is None:
            v = Verification(self, p.sender, txn, we_started=False)
            v.their_key, v.their_device = str(body.get("key", "")), p.sender_device
            self.active[txn] = v
        elif v is None or v.peer != p.sender:
            return
        elif kind == "key" and v.we_started and not v.emoji and not v.cancelled:
            v.their_key, v.their_device = str(body.get("key", "")), p.sender_device
            try:
                v.emoji = v.sas.receive_key(v.their_key, we_started=True, info=v._info())
            except ProtocolError:
                v.cancelled = True
        elif kind == "mac" and p.sender_device == v.their_device:
            v._their_mac = str(body.get("mac", ""))
            v._check_mac()
        elif kind == "cancel":
            v.cancelled = True
        v._touch()

    # -- safety numbers ------------------------------------------------------------------------
    def _keys(self, peer: str) -> tuple[bytes, bytes]:
        theirs = self.device.directory.peer_record(peer).get("identity_key")
        if not theirs:
            raise UsageError(f"no identity key known for {peer} yet: exchange a secret message first")
        mine = self.device._identity_public()
        return b64decode(mine, what="identity key"), b64decode(str(theirs), what="identity key")

    def safety_number(self, peer: str) -> str:
        mine, theirs = self._keys(peer)
        return safety_number(mine, self.me.encode(), theirs, peer.encode())

    def safety_text(self, peer: str) -> str:
        return format_groups(self.safety_number(peer))

    def qr(self, peer: str) -> bytes:
        mine, theirs = self._keys(peer)
        return qr_payload(QR_VERSION, mine, self.me.encode(), theirs, peer.encode())

    def verify_qr(self, peer: str, scanned: bytes) -> None:
        """Check the QR payload shown by `peer`'s device; mark them verified if it matches."""
        mine, theirs = self._keys(peer)
        try:
            verify_qr_payload(scanned, mine, self.me.encode(), theirs, peer.encode())
        except ProtocolError as exc:
            raise UsageError(f"the code does not match {peer}'s safety number: {exc}") from exc
        self.device.mark_verified(peer, how="QR code")
