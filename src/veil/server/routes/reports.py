"""/v1/reports: abuse reports (secret threads verified with message franking)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from veil.protocol.encoding import b64decode
from veil.protocol.errors import MalformedData
from veil.server.errors import BadRequest
from veil.server.routes.deps import AuthDep
from veil.server.routes.models_extras import ReportIn, ReportOut, RevealedIn
from veil.server.services.reports import ReportService, RevealedMessage
from veil.server.storage.base import DeviceRow

__all__ = ["reports_router"]


def _revealed(i: int, m: RevealedIn) -> RevealedMessage:
    try:
        payload, commitment, tag = (b64decode(getattr(m, f), what=f"messages[{i}].{f}")
                                    for f in ("payload", "commitment", "franking_tag"))
    except MalformedData as exc:
        raise BadRequest(str(exc), "bad_base64") from exc
    return RevealedMessage(payload=payload, commitment=commitment, franking_tag=tag, sender=m.sender,
                           sender_device=m.sender_device, recipient=m.recipient,
                           recipient_device=m.recipient_device, server_ts=m.server_ts,
                           attachment_plaintext_blob_id=m.attachment_plaintext_blob_id)


def reports_router(reports: ReportService, auth: AuthDep) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["reports"])

    @r.post("/reports", status_code=201, response_model=ReportOut)
    async def report(body: ReportIn, me: DeviceRow = Depends(auth)) -> ReportOut:
        if body.secret:
            row = await reports.report_secret(me, body.peer, body.reason,
                                              [_revealed(i, m) for i, m in enumerate(body.messages)])
        else:
            row = await reports.report_regular(me, body.peer, body.reason, body.message_ids)
        return ReportOut(report_id=row.report_id, verdict=row.verdict)

    return r
