"""Which devices may be encrypted to: the trust rules of ARCHITECTURE.md.

An account's identity key is pinned on first use; only devices in a device list signed by
the pinned key (and not older than the last one seen) are trusted. A device the server lists
but the identity key never signed gets a warning and nothing else. A changed identity key
holds sends until the user confirms it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from veil.client.api import ServerAPI
from veil.client.errors import IdentityChanged
from veil.client.store import Store
from veil.protocol.devicelist import DeviceEntry, DeviceList, verify_device_list
from veil.protocol.errors import MalformedData, SignatureInvalid

__all__ = ["Directory", "PeerDevices"]

# (peer handle, notice code, text): adds a system line to the peer's threads
NoticeSink = Callable[[str, str, str], None]


@dataclass(slots=True)
class PeerDevices:
    handle: str
    identity_key: str
    devices: list[DeviceEntry]
    untrusted: list[str] = field(default_factory=list)  # device ids the server lists but nobody signed

    def entry(self, device_id: str) -> DeviceEntry | None:
        for d in self.devices:
            if d.device_id == device_id:
                return d
        return None


class Directory:
    def __init__(self, store: Store, api: ServerAPI, me: str, own_identity: str, notice: NoticeSink) -> None:
        self._store = store
        self._api = api
        self._me = me
        self._own_identity = own_identity
        self._notice = notice
        self._cache: dict[str, PeerDevices] = {}

    def forget(self, handle: str) -> None:
        self._cache.pop(handle, None)

    def peer_record(self, handle: str) -> dict[str, Any]:
        rec = self._store.get(f"peer:{handle}")
        return dict(rec) if rec else {}

    async def get(self, handle: str, *, refresh: bool = False) -> PeerDevices:
        if not refresh and handle in self._cache:
            return self._cache[handle]
        info = await self._api.user(handle)
        peer = self.resolve(handle, info)
        self._cache[handle] = peer
        return peer

    def resolve(self, handle: str, info: dict[str, Any]) -> PeerDevices:
        """Apply the trust rules to what the server says about `handle`."""
        rec = self.peer_record(handle)
        served_key = str(info["identity_key"])
        if handle == self._me:
            pinned = self._own_identity
        else:
            pinned = rec.get("identity_key") or served_key
            rec.setdefault("identity_key", pinned)
        if served_key != pinned:
            if rec.get("changed_key") != served_key:
                rec["changed_key"] = served_key
                rec["verified"] = False
                self._store.put(f"peer:{handle}", rec)
                self._notice(handle, "identity_changed",
                             f"{handle}'s safety number changed: their identity key is new. Messages to "
                             f"{handle} are held until you confirm.")
            raise IdentityChanged(handle)

        cached: list[DeviceEntry] = [DeviceEntry(device_id=d[0], curve25519=d[1], ed25519=d[2])
                                     for d in rec.get("devices", [])]
        version = int(rec.get("version", 0))
        devices = cached
        raw = info.get("device_list")
        if raw is not None:
            try:
                dl = msgspec.convert(raw, DeviceList)
                verify_device_list(pinned, dl)
                if dl.handle != handle:
                    raise MalformedData("device list names another account")
                if dl.version < version:
                    raise MalformedData("device list is older than one already seen")
                devices = list(dl.devices)
                version = dl.version
            except (msgspec.ValidationError, MalformedData, SignatureInvalid):
                bad_version = raw.get("version") if isinstance(raw, dict) else -1
                if rec.get("bad_list_warned") != bad_version:
                    rec["bad_list_warned"] = bad_version
                    self._notice(handle, "device_list_invalid",
                                 f"The server gave a device list for {handle} that their identity key did "
                                 "not sign. It was ignored.")
        if cached and handle != self._me:
            known = {d.device_id for d in cached}
            for d in devices:
                if d.device_id not in known:
                    self._notice(handle, "new_device", f"{handle} added a new device ({d.device_id}).")
        signed_ids = {d.device_id for d in devices}
        served_ids = [str(d["device_id"]) for d in info.get("devices", [])]
        untrusted = [d for d in served_ids if d not in signed_ids]
        warned = set(rec.get("warned", []))
        for dev in untrusted:
            if dev not in warned:
                warned.add(dev)
                whose = "your" if handle == self._me else f"{handle}'s"
                self._notice(handle, "untrusted_device",
                             f"The server lists a device ({dev}) for {whose} account that {whose} identity "
                             "key has not signed. Nothing is sent to it.")
        rec.update({"version": version, "warned": sorted(warned),
                    "devices": [[d.device_id, d.curve25519, d.ed25519] for d in devices]})
        self._store.put(f"peer:{handle}", rec)
        return PeerDevices(handle=handle, identity_key=pinned, devices=devices, untrusted=untrusted)

    def confirm_identity(self, handle: str) -> bool:
        """Accept a changed identity key; True if there was one to accept."""
        rec = self.peer_record(handle)
        new = rec.get("changed_key")
        if not new:
            return False
        self._store.put(f"peer:{handle}", {"identity_key": new, "verified": False, "version": 0,
                                           "devices": [], "warned": []})
        self.forget(handle)
        return True
