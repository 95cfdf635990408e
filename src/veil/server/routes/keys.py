"""/v1/keys, /v1/keys/count, /v1/keys/claim, /v1/users/{handle}, /v1/devicelist."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from veil.server.routes.deps import AuthDep
from veil.server.routes.models import (
    ClaimedKeyOut,
    ClaimIn,
    ClaimOut,
    DeviceKeysOut,
    DeviceListIn,
    DeviceListOut,
    KeyCountOut,
    KeysIn,
    KeysUploadOut,
    UserOut,
    VersionOut,
)
from veil.server.services.keys import KeyService, to_device_list
from veil.server.storage.base import DeviceRow, PrekeyRow

__all__ = ["keys_router"]


def keys_router(keys: KeyService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["keys"])

    @r.put("/keys", response_model=KeysUploadOut)
    async def upload(body: KeysIn, me: DeviceRow = Depends(auth)) -> KeysUploadOut:
        otks = [PrekeyRow(k.key_id, k.key, k.signature) for k in body.one_time_keys]
        fb = body.fallback_key
        fallback = PrekeyRow(fb.key_id, fb.key, fb.signature) if fb else None
        return KeysUploadOut(one_time_keys=await keys.upload(me, otks, fallback))

    @r.get("/keys/count", response_model=KeyCountOut)
    async def count(me: DeviceRow = Depends(auth)) -> KeyCountOut:
        c = await keys.count(me)
        return KeyCountOut(one_time_keys=c.one_time_keys, fallback_key=c.fallback_key)

    @r.post("/keys/claim", response_model=ClaimOut)
    async def claim(body: ClaimIn, me: DeviceRow = Depends(auth)) -> ClaimOut:
        got = await keys.claim([(d.handle, d.device_id) for d in body.devices])
        return ClaimOut(keys=[ClaimedKeyOut(handle=c.handle, device_id=c.key.device_id, key_id=c.key.key_id,
                                            key=c.key.key, signature=c.key.signature, fallback=c.key.fallback)
                              for c in got])

    @r.get("/users/{handle}", response_model=UserOut)
    async def user(handle: str, me: DeviceRow = Depends(auth)) -> UserOut:
        info = await keys.user(handle)
        dl = DeviceListOut.model_validate(info.device_list) if info.device_list else None
        return UserOut(handle=info.account.handle, display_name=info.account.display_name,
                       identity_key=info.account.identity_key, device_list=dl,
                       devices=[DeviceKeysOut(device_id=d.device_id, curve25519=d.curve25519,
                                              ed25519=d.ed25519) for d in info.devices])

    @r.put("/devicelist", response_model=VersionOut)
    async def put_device_list(body: DeviceListIn, me: DeviceRow = Depends(auth)) -> VersionOut:
        dl = to_device_list(body.handle, body.version,
                            [(d.device_id, d.curve25519, d.ed25519) for d in body.devices], body.signature)
        return VersionOut(version=await keys.put_device_list(me, dl))

    return r
