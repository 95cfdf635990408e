"""/v1/threads: regular (server-readable) threads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from veil.server.routes.deps import AuthDep
from veil.server.routes.models import HistoryOut, RegularIn, RegularOut, RegularSentOut, ThreadOut, ThreadsOut
from veil.server.services.threads import ThreadService
from veil.server.storage.base import DeviceRow

__all__ = ["threads_router"]


def threads_router(threads: ThreadService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["threads"])

    @r.post("/threads/{handle}/messages", status_code=201, response_model=RegularSentOut)
    async def send(handle: str, body: RegularIn, me: DeviceRow = Depends(auth)) -> RegularSentOut:
        row = await threads.send(me, handle, body.client_message_id, body.text)
        return RegularSentOut(message_id=row.message_id, server_ts=row.ts)

    @r.get("/threads", response_model=ThreadsOut)
    async def list_threads(me: DeviceRow = Depends(auth)) -> ThreadsOut:
        return ThreadsOut(threads=[ThreadOut(peer=t.peer, last_ts=t.last_ts)
                                   for t in await threads.threads(me.handle)])

    @r.get("/threads/{handle}/messages", response_model=HistoryOut)
    async def history(handle: str, before: Annotated[str | None, Query(max_length=64)] = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50,
                      me: DeviceRow = Depends(auth)) -> HistoryOut:
        rows, more = await threads.history(me.handle, handle, before, limit)
        return HistoryOut(messages=[RegularOut(message_id=m.message_id, sender=m.sender,
                                               sender_device=m.sender_device, text=m.text, ts=m.ts)
                                    for m in rows], more=more)

    return r
