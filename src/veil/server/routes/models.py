"""Request and response bodies (pydantic), so /openapi.json documents the whole contract."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

HANDLE_RE = r"^[a-z0-9_]{3,32}$"
DEVICE_ID_RE = r"^[A-Z2-7]{10}$"

Handle = Annotated[str, Field(pattern=HANDLE_RE, description="3-32 of a-z, 0-9, _")]
DeviceId = Annotated[str, Field(min_length=1, max_length=16)]
Key = Annotated[str, Field(min_length=1, max_length=64, description="unpadded base64")]
Signature = Annotated[str, Field(min_length=1, max_length=128, description="unpadded base64")]
ClientMessageId = Annotated[str, Field(min_length=1, max_length=128)]
MAX_ENVELOPE_B64 = 87384  # base64 length of 64 KiB; the decoded size is checked too


class In(BaseModel):
    # Strict: a number where a string belongs (or "1" for 1) is a 422, never silently coerced.
    model_config = ConfigDict(strict=True, extra="ignore")


# -- accounts ------------------------------------------------------------------------------
class RegisterIn(In):
    handle: Handle
    display_name: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=8, max_length=1024)]
    identity_key: Key


class HandleOut(BaseModel):
    handle: str


class LoginIn(In):
    handle: Handle
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    device_name: Annotated[str, Field(min_length=1, max_length=64)]
    curve25519: Key
    ed25519: Key


class LoginOut(BaseModel):
    device_id: str
    token: str
    state: str


class DeviceOut(BaseModel):
    device_id: str
    name: str
    state: str
    created_at: int
    last_seen: int


class DevicesOut(BaseModel):
    devices: list[DeviceOut]


class RevokedOut(BaseModel):
    revoked: str


class IdentityIn(In):
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    identity_key: Key


class OkOut(BaseModel):
    ok: bool = True


# -- keys ----------------------------------------------------------------------------------
class PrekeyIn(In):
    key_id: Annotated[str, Field(min_length=1, max_length=64)]
    key: Key
    signature: Signature


class KeysIn(In):
    one_time_keys: Annotated[list[PrekeyIn], Field(max_length=100)] = []
    fallback_key: PrekeyIn | None = None


class KeysUploadOut(BaseModel):
    one_time_keys: int


class KeyCountOut(BaseModel):
    one_time_keys: int
    fallback_key: bool


class DeviceRef(In):
    handle: Handle
    device_id: DeviceId


class ClaimIn(In):
    devices: Annotated[list[DeviceRef], Field(max_length=64)]


class ClaimedKeyOut(BaseModel):
    handle: str
    device_id: str
    key_id: str
    key: str
    signature: str
    fallback: bool


class ClaimOut(BaseModel):
    keys: list[ClaimedKeyOut]


class DeviceKeys(In):
    device_id: DeviceId
    curve25519: Key
    ed25519: Key


class DeviceListIn(In):
    handle: Handle
    version: Annotated[int, Field(ge=1, le=2**62)]
    devices: Annotated[list[DeviceKeys], Field(min_length=1, max_length=16)]
    signature: Signature


class DeviceKeysOut(BaseModel):
    device_id: str
    curve25519: str
    ed25519: str


class DeviceListOut(BaseModel):
    handle: str
    version: int
    devices: list[DeviceKeysOut]
    signature: str


class UserOut(BaseModel):
    handle: str
    display_name: str
    identity_key: str
    device_list: DeviceListOut | None
    devices: list[DeviceKeysOut]


class VersionOut(BaseModel):
    version: int


# -- mailboxes -----------------------------------------------------------------------------
class EnvelopeIn(In):
    handle: Handle
    device_id: DeviceId
    olm_type: Annotated[int, Field(ge=0, le=255)]
    body: Annotated[str, Field(min_length=1, max_length=MAX_ENVELOPE_B64, description="base64")]


class SendIn(In):
    client_message_id: ClientMessageId
    recipient: Handle
    envelopes: Annotated[list[EnvelopeIn], Field(max_length=64)]
    skipped: Annotated[list[DeviceRef], Field(max_length=256)] = []
    commitment: Annotated[str, Field(max_length=64, description="franking commitment, base64 of "
                                                                "32 bytes; empty or absent: none")] = ""


class SendOut(BaseModel):
    server_ts: int
    count: int


class EnvelopeOut(BaseModel):
    id: int
    kind: int
    sender: str
    sender_device: str
    server_ts: int
    olm_type: int
    body: str
    client_message_id: str
    commitment: str = Field(description="franking commitment (base64), '' when absent")
    franking_tag: str = Field(description="the server's franking tag (base64), '' when absent")


class FetchOut(BaseModel):
    envelopes: list[EnvelopeOut]
    more: bool


class AckIn(In):
    ids: Annotated[list[int], Field(max_length=1000)]


class AckOut(BaseModel):
    deleted: int


class MismatchError(BaseModel):
    code: str
    message: str


class MismatchOut(BaseModel):
    """409 device_mismatch: what to add (missing) and drop (stale) before retrying."""

    error: MismatchError
    missing: list[DeviceRef]
    stale: list[DeviceRef]


# -- regular threads -----------------------------------------------------------------------
class AttachmentIn(In):
    blob_id: Annotated[str, Field(min_length=1, max_length=32)]
    mime: Annotated[str, Field(min_length=1, max_length=128)]
    size: Annotated[int, Field(ge=0, le=2**53)]
    width: Annotated[int, Field(ge=0, le=100_000)] = 0
    height: Annotated[int, Field(ge=0, le=100_000)] = 0
    duration_ms: Annotated[int, Field(ge=0, le=2**53)] = 0
    name: Annotated[str, Field(max_length=256)] = ""


class RegularIn(In):
    client_message_id: ClientMessageId
    text: Annotated[str, Field(max_length=8000)] = ""
    kind: Literal["text", "image", "video", "sticker"] = "text"
    attachment: AttachmentIn | None = None
    sticker: Annotated[str, Field(max_length=128, description="pack/sticker_id")] = ""

    @model_validator(mode="after")
    def _complete(self) -> RegularIn:
        if self.kind == "text" and not self.text:
            raise ValueError("text must not be empty for a text message")
        if self.kind in ("image", "video") and self.attachment is None:
            raise ValueError(f"a {self.kind} message needs an attachment")
        if self.kind == "sticker" and not self.sticker:
            raise ValueError("a sticker message needs a sticker")
        return self


class RegularEventIn(In):
    kind: Literal["read", "typing"]
    ref: Annotated[str, Field(max_length=64)] = ""


class RegularSentOut(BaseModel):
    message_id: str
    server_ts: int


class ThreadOut(BaseModel):
    peer: str
    last_ts: int


class ThreadsOut(BaseModel):
    threads: list[ThreadOut]


class AttachmentOut(BaseModel):
    blob_id: str
    mime: str
    size: int
    width: int
    height: int
    duration_ms: int
    name: str


class RegularOut(BaseModel):
    message_id: str
    sender: str
    sender_device: str
    text: str
    ts: int
    kind: str
    attachment: AttachmentOut | None
    sticker: str


class HistoryOut(BaseModel):
    messages: list[RegularOut]
    more: bool


# -- links ---------------------------------------------------------------------------------
Ciphertext = Annotated[str, Field(min_length=1, max_length=65536, description="base64")]


class LinkCreateIn(In):
    ephemeral_key: Key


class LinkCreatedOut(BaseModel):
    link_id: str
    expires_at: int


class LinkRequestIn(In):
    ephemeral_key: Key
    ciphertext: Ciphertext


class LinkRequestOut(BaseModel):
    ephemeral_key: str
    ciphertext: str
    device_id: str


class LinkResponseIn(In):
    ciphertext: Ciphertext


class LinkResponseOut(BaseModel):
    ciphertext: str


class LinkOut(BaseModel):
    link_id: str
    ephemeral_key: str
    request: LinkRequestOut | None
    response: LinkResponseOut | None
    expires_at: int


class HealthOut(BaseModel):
    status: str
