"""/v1/blocks: who the caller blocks."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from veil.server.routes.deps import AuthDep
from veil.server.routes.models_extras import BlockedOut
from veil.server.services.blocks import BlockService
from veil.server.storage.base import DeviceRow

__all__ = ["blocks_router"]


def blocks_router(blocks: BlockService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["blocks"])

    @r.put("/blocks/{handle}", response_model=BlockedOut)
    async def block(handle: str, me: DeviceRow = Depends(auth)) -> BlockedOut:
        return BlockedOut(blocked=await blocks.block(me, handle))

    @r.delete("/blocks/{handle}", response_model=BlockedOut)
    async def unblock(handle: str, me: DeviceRow = Depends(auth)) -> BlockedOut:
        return BlockedOut(blocked=await blocks.unblock(me, handle))

    @r.get("/blocks", response_model=BlockedOut)
    async def blocked(me: DeviceRow = Depends(auth)) -> BlockedOut:
        return BlockedOut(blocked=await blocks.blocked(me))

    return r
