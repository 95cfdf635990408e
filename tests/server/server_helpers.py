"""Helpers shared by the server tests (fake clock, real signed keys)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from veil.protocol.devicelist import DeviceEntry, sign_device_list
from veil.protocol.encoding import b64encode
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.prekeys import prekey_message

START_MS = 1_700_000_000_000


class FakeClock:
    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def curve_key() -> str:
    """Stands in for a Curve25519 public key: 32 random bytes."""
    return b64encode(os.urandom(32))


@dataclass
class DeviceKeys:
    signing: IdentityKeyPair = field(default_factory=IdentityKeyPair.generate)
    curve25519: str = field(default_factory=curve_key)

    @property
    def ed25519(self) -> str:
        return self.signing.public_b64

    def prekey(self, handle: str, device_id: str, key_id: str, *, fallback: bool = False) -> dict[str, str]:
        key = curve_key()
        sig = self.signing.sign(prekey_message(handle, device_id, key_id, key, fallback=fallback))
        return {"key_id": key_id, "key": key, "signature": sig}


def signed_list_json(identity: IdentityKeyPair, handle: str, version: int,
                     devices: list[tuple[str, DeviceKeys]]) -> dict[str, object]:
    dl = sign_device_list(identity, handle, version,
                          [DeviceEntry(device_id=d, curve25519=k.curve25519, ed25519=k.ed25519)
                           for d, k in devices])
    return {"handle": dl.handle, "version": dl.version,
            "devices": [{"device_id": e.device_id, "curve25519": e.curve25519, "ed25519": e.ed25519}
                        for e in dl.devices],
            "signature": dl.signature}


@dataclass
class Person:
    handle: str
    password: str
    identity: IdentityKeyPair
    devices: list[tuple[str, str, DeviceKeys]] = field(default_factory=list)  # (device_id, token, keys)

    def auth(self, i: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.devices[i][1]}"}

    def device_id(self, i: int = 0) -> str:
        return self.devices[i][0]
