"""Linking a new device (see veil.protocol.linking for the exchange)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from veil.client.device import Device
from veil.client.errors import LinkFailed, ServerRejected
from veil.protocol.devicelist import DeviceEntry, verify_device_list
from veil.protocol.encoding import b64decode, b64encode
from veil.protocol.errors import DecryptionFailed, MalformedData, SignatureInvalid
from veil.protocol.keys import IdentityKeyPair, X25519KeyPair
from veil.protocol.linking import (
    LinkCode,
    LinkRequest,
    LinkResponse,
    link_key,
    open_request,
    open_response,
    seal_request,
    seal_response,
)

__all__ = ["LinkOffer", "link_new_device", "offer_link"]


@dataclass
class LinkOffer:
    """A link started on an existing device: show `code`, then `await complete()`."""

    device: Device
    code: str
    _code: LinkCode
    _eph: X25519KeyPair
    expires_at: int

    async def complete(self, *, timeout: float = 300.0, poll: float = 0.3) -> str:
        """Wait for the new device, sign it into the device list; return its device id."""
        api = self.device.api
        deadline = time.monotonic() + timeout
        while True:
            try:
                link = await api.get_link(self._code.link_id)
            except ServerRejected as exc:
                raise LinkFailed("the link expired before a new device used the code") from exc
            req = link.get("request")
            if req:
                break
            if time.monotonic() > deadline:
                await api.delete_link(self._code.link_id)
                raise LinkFailed("no new device used the code in time")
            await asyncio.sleep(poll)
        key = link_key(self._eph.agree(str(req["ephemeral_key"])), self._code, self._eph.public_b64,
                       str(req["ephemeral_key"]))
        try:
            request: LinkRequest = open_request(key, b64decode(str(req["ciphertext"]), what="ciphertext"))
        except (DecryptionFailed, MalformedData) as exc:
            await api.delete_link(self._code.link_id)
            raise LinkFailed("the new device entered a wrong code; start again") from exc
        if self.device.identity is None:
            raise LinkFailed("this device is not linked itself, so it cannot link others")
        current = await self.device.own_device_list()
        version = current.version if current else 0
        devices = [d for d in (current.devices if current else ()) if d.device_id != request.device_id]
        devices.append(DeviceEntry(device_id=request.device_id, curve25519=request.curve25519,
                                   ed25519=request.ed25519))
        try:
            dl = await self.device._publish_device_list(devices, version=version + 1)
        except ServerRejected as exc:
            await api.delete_link(self._code.link_id)
            raise LinkFailed(f"the server refused the new device list: {exc.message}") from exc
        resp = LinkResponse(handle=self.device.handle, identity_private=self.device.identity.private_bytes(),
                            device_list=dl)
        await api.link_response(self._code.link_id, b64encode(seal_response(key, resp)))
        return request.device_id


async def offer_link(device: Device) -> LinkOffer:
    eph = X25519KeyPair()
    r = await device.api.create_link(eph.public_b64)
    code = LinkCode.new(str(r["link_id"]))
    return LinkOffer(device=device, code=str(code), _code=code, _eph=eph, expires_at=int(r["expires_at"]))


async def link_new_device(profile: Path, server: str, handle: str, password: str, passphrase: str,
                          code: str, *, device_name: str = "linked device", timeout: float = 300.0,
                          poll: float = 0.3, clock: Callable[[], int] | None = None) -> Device:
    """Log a new device in and complete the link with the code shown on an existing device."""
    try:
        parsed = LinkCode.parse(code)
    except MalformedData as exc:
        raise LinkFailed(str(exc)) from exc
    if clock is None:
        device = await Device.login(profile, server, handle, password, passphrase, device_name=device_name)
    else:
        device = await Device.login(profile, server, handle, password, passphrase, device_name=device_name,
                                    clock=clock)
    try:
        await _complete(device, parsed, timeout=timeout, poll=poll)
    except BaseException:
        await device.close()
        raise
    return device


async def _complete(device: Device, code: LinkCode, *, timeout: float, poll: float) -> None:
    api = device.api
    try:
        link = await api.get_link(code.link_id)
    except ServerRejected as exc:
        raise LinkFailed("this link code is unknown or has expired; ask for a new one") from exc
    eph = X25519KeyPair()
    their = str(link["ephemeral_key"])
    key = link_key(eph.agree(their), code, their, eph.public_b64)
    own = device._own_entry()
    sealed = seal_request(key, LinkRequest(device_id=own.device_id, curve25519=own.curve25519,
                                           ed25519=own.ed25519))
    try:
        await api.link_request(code.link_id, eph.public_b64, b64encode(sealed))
    except ServerRejected as exc:
        raise LinkFailed(f"the link could not be used: {exc.message}") from exc
    deadline = time.monotonic() + timeout
    while True:
        try:
            link = await api.get_link(code.link_id)
        except ServerRejected as exc:
            raise LinkFailed("the link code was wrong, or the other device cancelled the link") from exc
        if link.get("response"):
            break
        if time.monotonic() > deadline:
            raise LinkFailed("the existing device did not answer in time")
        await asyncio.sleep(poll)
    try:
        sealed_resp = b64decode(str(link["response"]["ciphertext"]), what="response")
        resp: LinkResponse = open_response(key, sealed_resp)
        identity = IdentityKeyPair.from_private_bytes(resp.identity_private)
        verify_device_list(identity.public_b64, resp.device_list)
    except (DecryptionFailed, MalformedData, SignatureInvalid) as exc:
        raise LinkFailed("the link code is wrong") from exc
    if resp.handle != device.handle or resp.device_list.device(device.device_id) is None:
        raise LinkFailed("the existing device answered for another account or device")
    await api.delete_link(code.link_id)
    device.identity = identity
    device.directory = type(device.directory)(device.store, device.api, device.handle, identity.public_b64,
                                              device.notice)
    device.save_state()
    device.store.commit()
