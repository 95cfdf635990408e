"""Signed device lists: which devices belong to an account, signed by its identity key."""

from __future__ import annotations

import msgspec

from veil.protocol.errors import MalformedData
from veil.protocol.keys import IdentityKeyPair, verify_ed25519

__all__ = ["DeviceEntry", "DeviceList", "sign_device_list", "verify_device_list"]

MAX_DEVICES = 16


class DeviceEntry(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str
    curve25519: str
    ed25519: str


class DeviceList(msgspec.Struct, frozen=True, kw_only=True):
    handle: str
    version: int
    devices: tuple[DeviceEntry, ...]
    signature: str = ""

    def signed_bytes(self) -> bytes:
        """Canonical bytes covered by the signature (everything but the signature)."""
        body = (self.handle, self.version, tuple(sorted(self.devices, key=lambda d: d.device_id)))
        return b"veil-devicelist-v1\n" + msgspec.msgpack.encode(body)

    def device(self, device_id: str) -> DeviceEntry | None:
        for d in self.devices:
            if d.device_id == device_id:
                return d
        return None


def sign_device_list(identity: IdentityKeyPair, handle: str, version: int,
                     devices: list[DeviceEntry]) -> DeviceList:
    if not 1 <= len(devices) <= MAX_DEVICES:
        raise MalformedData(f"a device list holds 1 to {MAX_DEVICES} devices")
    unsigned = DeviceList(handle=handle, version=version, devices=tuple(devices))
    return msgspec.structs.replace(unsigned, signature=identity.sign(unsigned.signed_bytes()))


def verify_device_list(identity_key_b64: str, dl: DeviceList) -> None:
    """Raise SignatureInvalid / MalformedData unless `dl` is well-formed and signed."""
    if dl.version < 1:
        raise MalformedData("device list version must be at least 1")
    if not 1 <= len(dl.devices) <= MAX_DEVICES:
        raise MalformedData(f"a device list holds 1 to {MAX_DEVICES} devices")
    if len({d.device_id for d in dl.devices}) != len(dl.devices):
        raise MalformedData("a device list names a device twice")
    verify_ed25519(identity_key_b64, dl.signed_bytes(), dl.signature)
