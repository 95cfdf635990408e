"""/v1/threads: regular (server-readable) threads: messages, events, unsend, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from veil.protocol.payload import Attachment
from veil.server.routes.deps import AuthDep
from veil.server.routes.models import (
    AttachmentIn,
    AttachmentOut,
    HistoryOut,
    OkOut,
    RegularEventIn,
    RegularIn,
    RegularOut,
    RegularSentOut,
    ThreadOut,
    ThreadsOut,
)
from veil.server.services.threads import Content, ThreadService, attachment_dict
from veil.server.storage.base import DeviceRow, RegularRow

__all__ = ["threads_router"]


def _attachment(a: AttachmentIn | None) -> Attachment | None:
    if a is None:
        return None
    return Attachment(blob_id=a.blob_id, mime=a.mime, size=a.size, width=a.width, height=a.height,
                      duration_ms=a.duration_ms, name=a.name)


def _out(m: RegularRow) -> RegularOut:
    att = attachment_dict(m.attachment_json)
    return RegularOut(message_id=m.message_id, sender=m.sender, sender_device=m.sender_device, text=m.text,
                      ts=m.ts, kind=m.kind, attachment=AttachmentOut.model_validate(att) if att else None,
                      sticker=m.sticker)


def threads_router(threads: ThreadService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["threads"])

    @r.post("/threads/{handle}/messages", status_code=201, response_model=RegularSentOut)
    async def send(handle: str, body: RegularIn, me: DeviceRow = Depends(auth)) -> RegularSentOut:
        content = Content(text=body.text, kind=body.kind, attachment=_attachment(body.attachment),
                          sticker=body.sticker)
        row = await threads.send(me, handle, body.client_message_id, content)
        return RegularSentOut(message_id=row.message_id, server_ts=row.ts)

    @r.post("/threads/{handle}/events", response_model=OkOut)
    async def event(handle: str, body: RegularEventIn, me: DeviceRow = Depends(auth)) -> OkOut:
        await threads.event(me, handle, body.kind, body.ref)
        return OkOut()

    @r.post("/threads/{handle}/messages/{message_id}/unsend", response_model=OkOut)
    async def unsend(handle: str, message_id: str, me: DeviceRow = Depends(auth)) -> OkOut:
        await threads.unsend(me, handle, message_id)
        return OkOut()

    @r.get("/threads", response_model=ThreadsOut)
    async def list_threads(me: DeviceRow = Depends(auth)) -> ThreadsOut:
        return ThreadsOut(threads=[ThreadOut(peer=t.peer, last_ts=t.last_ts)
                                   for t in await threads.threads(me.handle)])

    @r.get("/threads/{handle}/messages", response_model=HistoryOut)
    async def history(handle: str, before: Annotated[str | None, Query(max_length=64)] = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50,
                      me: DeviceRow = Depends(auth)) -> HistoryOut:
        rows, more = await threads.history(me.handle, handle, before, limit)
        return HistoryOut(messages=[_out(m) for m in rows], more=more)

    return r
