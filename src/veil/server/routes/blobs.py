"""/v1/blobs: attachment bytes, streamed in and out (never held whole in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from veil.server.routes.deps import AuthDep
from veil.server.routes.models import OkOut
from veil.server.routes.models_extras import BlobOut
from veil.server.services.blobs import MAX_AGE_S, BlobService
from veil.server.storage.base import DeviceRow

__all__ = ["blobs_router"]


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def blobs_router(blobs: BlobService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["blobs"])

    @r.post("/blobs", status_code=201, response_model=BlobOut,
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload(request: Request,
                     max_age: Annotated[int, Query(ge=1, le=MAX_AGE_S, description="seconds")] = MAX_AGE_S,
                     downloads: Annotated[int, Query(ge=0, le=10_000, description="0 = no limit")] = 0,
                     me: DeviceRow = Depends(auth)) -> BlobOut:
        row = await blobs.upload(me, request.stream(), declared=_content_length(request),
                                 max_age_s=max_age, downloads=downloads)
        return BlobOut(blob_id=row.blob_id, size=row.size)

    @r.get("/blobs/{blob_id}", response_class=StreamingResponse,
           responses={200: {"content": {"application/octet-stream": {}}}})
    async def download(blob_id: str, me: DeviceRow = Depends(auth)) -> StreamingResponse:
        row = await blobs.get(blob_id)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in blobs.chunks(row):
                yield chunk
            # Every byte has been handed to the server (a client that went away mid-download
            # cancelled us before this line). Recorded before the response ends, so the
            # device's next request already sees the blob gone when this was the last download.
            await blobs.downloaded(me, row)

        return StreamingResponse(body(), media_type="application/octet-stream",
                                 headers={"content-length": str(row.size)})

    @r.delete("/blobs/{blob_id}", response_model=OkOut)
    async def delete(blob_id: str, me: DeviceRow = Depends(auth)) -> OkOut:
        await blobs.delete(me, blob_id)
        return OkOut()

    return r
