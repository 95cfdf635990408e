"""/v1/messages: send a batch of envelopes, fetch the mailbox, acknowledge."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from veil.protocol.encoding import b64decode, b64encode
from veil.protocol.errors import MalformedData
from veil.server.errors import BadRequest, TooLarge
from veil.server.routes.deps import AuthDep
from veil.server.routes.models import AckIn, AckOut, EnvelopeOut, FetchOut, MismatchOut, SendIn, SendOut
from veil.server.services.mailbox import MailboxService, OutgoingEnvelope
from veil.server.storage.base import DeviceRow

__all__ = ["messages_router"]

MAX_ENVELOPE_BYTES = 64 * 1024
COMMITMENT_BYTES = 32
_MISMATCH: dict[int | str, dict[str, Any]] = {409: {"model": MismatchOut, "description": "device_mismatch"}}


def messages_router(mailbox: MailboxService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["mailbox"])

    @r.post("/messages", response_model=SendOut, responses=_MISMATCH)
    async def send(body: SendIn, me: DeviceRow = Depends(auth)) -> SendOut:
        outgoing = []
        for i, e in enumerate(body.envelopes):
            try:
                raw = b64decode(e.body, what=f"envelopes[{i}].body")
            except MalformedData as exc:
                raise BadRequest(str(exc), "bad_base64") from exc
            if len(raw) > MAX_ENVELOPE_BYTES:
                raise TooLarge(f"envelopes[{i}].body is over {MAX_ENVELOPE_BYTES} bytes",
                               "envelope_too_large")
            outgoing.append(OutgoingEnvelope(e.handle, e.device_id, e.olm_type, raw))
        commitment = b""
        if body.commitment:
            try:
                commitment = b64decode(body.commitment, what="commitment", length=COMMITMENT_BYTES)
            except MalformedData as exc:
                raise BadRequest(str(exc), "bad_commitment") from exc
        res = await mailbox.send(me, body.client_message_id, body.recipient, outgoing,
                                 [(s.handle, s.device_id) for s in body.skipped], commitment)
        return SendOut(server_ts=res.server_ts, count=res.count)

    @r.get("/messages", response_model=FetchOut)
    async def fetch(limit: Annotated[int, Query(ge=1, le=500)] = 100,
                    me: DeviceRow = Depends(auth)) -> FetchOut:
        rows, more = await mailbox.fetch(me, limit)
        return FetchOut(envelopes=[EnvelopeOut(id=e.id, kind=e.kind, sender=e.sender,
                                               sender_device=e.sender_device, server_ts=e.server_ts,
                                               olm_type=e.olm_type, body=b64encode(e.body),
                                               client_message_id=e.client_message_id,
                                               commitment=b64encode(e.commitment),
                                               franking_tag=b64encode(e.franking_tag)) for e in rows],
                        more=more)

    @r.post("/messages/ack", response_model=AckOut)
    async def ack(body: AckIn, me: DeviceRow = Depends(auth)) -> AckOut:
        return AckOut(deleted=await mailbox.ack(me, body.ids))

    return r
