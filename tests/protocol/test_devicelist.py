from __future__ import annotations

import msgspec
import pytest

from veil.protocol.devicelist import DeviceEntry, sign_device_list, verify_device_list
from veil.protocol.errors import MalformedData, SignatureInvalid
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.olm import OlmAccount


def _entry() -> DeviceEntry:
    a = OlmAccount()
    return DeviceEntry(device_id="D" + a.curve25519[:9], curve25519=a.curve25519, ed25519=a.ed25519)


def test_signed_list_verifies_and_tampering_fails() -> None:
    ik = IdentityKeyPair.generate()
    dl = sign_device_list(ik, "alice", 3, [_entry(), _entry()])
    verify_device_list(ik.public_b64, dl)
    for changed in (msgspec.structs.replace(dl, version=4), msgspec.structs.replace(dl, handle="mallory"),
                    msgspec.structs.replace(dl, devices=(*dl.devices, _entry()))):
        with pytest.raises(SignatureInvalid):
            verify_device_list(ik.public_b64, changed)
    with pytest.raises(SignatureInvalid):
        verify_device_list(IdentityKeyPair.generate().public_b64, dl)


def test_order_of_devices_does_not_matter_but_duplicates_do() -> None:
    ik = IdentityKeyPair.generate()
    a, b = _entry(), _entry()
    dl = sign_device_list(ik, "alice", 1, [a, b])
    verify_device_list(ik.public_b64, msgspec.structs.replace(dl, devices=(b, a)))
    with pytest.raises(MalformedData):
        verify_device_list(ik.public_b64, msgspec.structs.replace(dl, devices=(a, a)))
