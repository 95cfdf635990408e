"""The key directory: prekeys (upload, count, claim), user lookup, signed device lists."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veil.protocol.devicelist import DeviceEntry, DeviceList, verify_device_list
from veil.protocol.errors import MalformedData, SignatureInvalid
from veil.protocol.prekeys import verify_prekey
from veil.server.errors import BadRequest, Conflict, Forbidden, NotFound
from veil.server.hub import Hub
from veil.server.storage.base import (
    AccountRow,
    CapacityExceeded,
    ClaimedKey,
    DeviceListRow,
    DeviceRow,
    KeyCount,
    PrekeyRow,
    Store,
)

__all__ = ["KEYS_LOW", "MAX_STORED_KEYS", "KeyService", "UserInfo"]

log = logging.getLogger("veil.server.keys")

MAX_STORED_KEYS = 200
KEYS_LOW = 10  # below this many one-time keys a device is told to publish more


@dataclass(frozen=True, slots=True)
class UserInfo:
    account: AccountRow
    device_list: dict[str, Any] | None
    devices: list[DeviceRow]


@dataclass(frozen=True, slots=True)
class Claimed:
    handle: str
    key: ClaimedKey


class KeyService:
    def __init__(self, store: Store, hub: Hub) -> None:
        self._store = store
        self._hub = hub

    async def upload(self, device: DeviceRow, one_time_keys: Sequence[PrekeyRow],
                     fallback: PrekeyRow | None) -> int:
        ids = [k.key_id for k in one_time_keys]
        if len(set(ids)) != len(ids):
            raise BadRequest("one_time_keys names a key_id twice", "duplicate_key_id")
        signed = [(k, False) for k in one_time_keys] + ([(fallback, True)] if fallback else [])
        for k, is_fallback in signed:
            try:
                verify_prekey(device.ed25519, device.handle, device.device_id, k.key_id, k.key,
                              k.signature, fallback=is_fallback)
            except (SignatureInvalid, MalformedData) as exc:
                what = "fallback_key" if is_fallback else f"one-time key {k.key_id!r}"
                raise BadRequest(f"the signature of {what} does not verify with this device's "
                                 "ed25519 key", "bad_signature") from exc
        try:
            return await self._store.add_prekeys(device.device_id, one_time_keys, fallback, MAX_STORED_KEYS)
        except CapacityExceeded as exc:
            raise BadRequest(f"at most {MAX_STORED_KEYS} one-time keys are stored per device",
                             "too_many_keys") from exc

    async def count(self, device: DeviceRow) -> KeyCount:
        return await self._store.count_prekeys(device.device_id)

    async def claim(self, wanted: Sequence[tuple[str, str]]) -> list[Claimed]:
        """One key per named device; devices unknown, of another handle, or keyless are left out."""
        out: list[Claimed] = []
        for handle, device_id in dict.fromkeys(wanted):  # de-duplicated, order kept
            device = await self._store.get_device(device_id)
            if device is None or device.handle != handle:
                continue
            key = await self._store.claim_prekey(device_id)
            if key is None:
                continue
            out.append(Claimed(handle, key))
            if not key.fallback:
                left = (await self._store.count_prekeys(device_id)).one_time_keys
                if left < KEYS_LOW:
                    self._hub.keys_low(device_id, left)
        return out

    async def user(self, handle: str) -> UserInfo:
        account = await self._store.get_account(handle)
        if account is None:
            raise NotFound(f"no user {handle!r}", "unknown_user")
        stored = await self._store.get_device_list(handle)
        body = json.loads(stored.body) if stored is not None else None
        return UserInfo(account=account, device_list=body,
                        devices=await self._store.devices_of([handle], active_only=True))

    async def put_device_list(self, caller: DeviceRow, dl: DeviceList) -> int:
        if dl.handle != caller.handle:
            raise Forbidden("you can only upload your own account's device list", "wrong_handle")
        account = await self._store.get_account(caller.handle)
        if account is None:  # pragma: no cover - the caller's device implies the account
            raise NotFound("your account no longer exists", "unknown_user")
        try:
            verify_device_list(account.identity_key, dl)
        except SignatureInvalid as exc:
            raise BadRequest("the device list signature does not verify with the account identity key",
                             "bad_signature") from exc
        except MalformedData as exc:
            raise BadRequest(str(exc), "bad_device_list") from exc
        stored = await self._store.get_device_list(caller.handle)
        if stored is not None and dl.version <= stored.version:
            raise Conflict(f"version {dl.version} is not newer than the stored {stored.version}",
                           "stale_version", extra={"version": stored.version})
        known = {d.device_id: d for d in await self._store.devices_of([caller.handle])}
        for entry in dl.devices:
            have = known.get(entry.device_id)
            if have is None or (have.curve25519, have.ed25519) != (entry.curve25519, entry.ed25519):
                raise BadRequest(f"device {entry.device_id!r} is not a device of this account "
                                 "with those keys", "unknown_device")
        body = json.dumps(device_list_json(dl), separators=(",", ":"))
        row = DeviceListRow(handle=dl.handle, version=dl.version, body=body)
        if not await self._store.put_device_list(row, [d.device_id for d in dl.devices]):
            raise Conflict(f"version {dl.version} is not newer than the stored one", "stale_version")
        self._hub.invalidate(dl.handle)  # the active devices changed: drop cached copies everywhere
        log.info("device list of %s now at version %d", dl.handle, dl.version)
        return dl.version


def device_list_json(dl: DeviceList) -> dict[str, Any]:
    """The list as clients upload and read it (devices as objects, not msgspec arrays)."""
    return {"handle": dl.handle, "version": dl.version,
            "devices": [{"device_id": d.device_id, "curve25519": d.curve25519, "ed25519": d.ed25519}
                        for d in dl.devices],
            "signature": dl.signature}


def to_device_list(handle: str, version: int, devices: Sequence[tuple[str, str, str]],
                   signature: str) -> DeviceList:
    return DeviceList(handle=handle, version=version,
                      devices=tuple(DeviceEntry(device_id=d, curve25519=c, ed25519=e) for d, c, e in devices),
                      signature=signature)
