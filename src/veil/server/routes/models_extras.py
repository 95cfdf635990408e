"""Request and response bodies of the issue-3 routes: blobs, blocks, reports."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from veil.server.routes.models import DeviceId, Handle, In

B64 = Annotated[str, Field(max_length=96, description="base64")]
MAX_PAYLOAD_B64 = 96 * 1024  # a revealed SecretPayload (its body is at most 64 KiB of text)


class BlobOut(BaseModel):
    blob_id: str
    size: int


class BlockedOut(BaseModel):
    blocked: list[str]


class RevealedIn(In):
    payload: Annotated[str, Field(min_length=1, max_length=MAX_PAYLOAD_B64, description="base64")]
    commitment: B64
    franking_tag: B64
    sender: Handle
    sender_device: DeviceId
    recipient: Handle
    recipient_device: DeviceId
    server_ts: Annotated[int, Field(ge=0, lt=2**63)]
    attachment_plaintext_blob_id: Annotated[str, Field(max_length=32)] | None = None


class ReportIn(In):
    """`secret: true` with `messages` (revealed payloads), or `secret: false` with `message_ids`."""

    peer: Handle
    secret: bool
    reason: Annotated[str, Field(max_length=2000)] = ""
    messages: Annotated[list[RevealedIn], Field(max_length=50, default_factory=list)]
    message_ids: Annotated[list[Annotated[str, Field(max_length=64)]],
                           Field(max_length=100, default_factory=list)]

    @model_validator(mode="after")
    def _one_kind(self) -> ReportIn:
        if self.secret and not self.messages:
            raise ValueError("a secret-thread report needs messages")
        if not self.secret and not self.message_ids:
            raise ValueError("a regular-thread report needs message_ids")
        return self


class ReportOut(BaseModel):
    report_id: str
    verdict: str
