"""/v1/accounts, /v1/devices, /v1/identity."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from veil.server.routes.deps import AuthDep, client_address
from veil.server.routes.models import (
    DeviceOut,
    DevicesOut,
    HandleOut,
    IdentityIn,
    LoginIn,
    LoginOut,
    OkOut,
    RegisterIn,
    RevokedOut,
)
from veil.server.services.accounts import AccountService
from veil.server.storage.base import DeviceRow

__all__ = ["accounts_router"]


def accounts_router(accounts: AccountService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["accounts"])

    @r.post("/accounts", status_code=201, response_model=HandleOut)
    async def register(body: RegisterIn) -> HandleOut:
        await accounts.register(body.handle, body.display_name, body.password, body.identity_key)
        return HandleOut(handle=body.handle)

    @r.post("/devices", status_code=201, response_model=LoginOut)
    async def login(body: LoginIn, request: Request) -> LoginOut:
        res = await accounts.login(body.handle, body.password, body.device_name, body.curve25519,
                                   body.ed25519, client_address(request))
        return LoginOut(device_id=res.device_id, token=res.token, state=res.state)

    @r.get("/devices", response_model=DevicesOut)
    async def list_devices(me: DeviceRow = Depends(auth)) -> DevicesOut:
        return DevicesOut(devices=[DeviceOut(device_id=d.device_id, name=d.name, state=d.state,
                                             created_at=d.created_at, last_seen=d.last_seen)
                                   for d in await accounts.devices(me.handle)])

    @r.delete("/devices/{device_id}", response_model=RevokedOut)
    async def revoke(device_id: str, me: DeviceRow = Depends(auth)) -> RevokedOut:
        await accounts.revoke(me, device_id)
        return RevokedOut(revoked=device_id)

    @r.put("/identity", response_model=OkOut)
    async def reset_identity(body: IdentityIn, request: Request, me: DeviceRow = Depends(auth)) -> OkOut:
        await accounts.reset_identity(me, body.password, body.identity_key, client_address(request))
        return OkOut()

    return r
