"""/v1/links: the device-linking relay."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from veil.server.routes.deps import AuthDep
from veil.server.routes.models import (
    LinkCreatedOut,
    LinkCreateIn,
    LinkOut,
    LinkRequestIn,
    LinkRequestOut,
    LinkResponseIn,
    LinkResponseOut,
    OkOut,
)
from veil.server.services.links import LinkService
from veil.server.storage.base import DeviceRow

__all__ = ["links_router"]


def links_router(links: LinkService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["linking"])

    @r.post("/links", status_code=201, response_model=LinkCreatedOut)
    async def create(body: LinkCreateIn, me: DeviceRow = Depends(auth)) -> LinkCreatedOut:
        view = await links.create(me, body.ephemeral_key)
        return LinkCreatedOut(link_id=view.link_id, expires_at=view.expires_at)

    @r.get("/links/{link_id}", response_model=LinkOut)
    async def get(link_id: str, me: DeviceRow = Depends(auth)) -> LinkOut:
        v = await links.get(me, link_id)
        return LinkOut(link_id=v.link_id, ephemeral_key=v.ephemeral_key,
                       request=LinkRequestOut.model_validate(v.request) if v.request else None,
                       response=LinkResponseOut.model_validate(v.response) if v.response else None,
                       expires_at=v.expires_at)

    @r.put("/links/{link_id}/request", response_model=OkOut)
    async def request(link_id: str, body: LinkRequestIn, me: DeviceRow = Depends(auth)) -> OkOut:
        await links.put_request(me, link_id, body.ephemeral_key, body.ciphertext)
        return OkOut()

    @r.put("/links/{link_id}/response", response_model=OkOut)
    async def response(link_id: str, body: LinkResponseIn, me: DeviceRow = Depends(auth)) -> OkOut:
        await links.put_response(me, link_id, body.ciphertext)
        return OkOut()

    @r.delete("/links/{link_id}", response_model=OkOut)
    async def delete(link_id: str, me: DeviceRow = Depends(auth)) -> OkOut:
        await links.delete(me, link_id)
        return OkOut()

    return r
