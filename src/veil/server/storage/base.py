"""The storage interface: rows as frozen dataclasses and one narrow async `Store` Protocol.

Stores hold SQL and nothing else: they never decide policy (services do), but every method
that must be atomic says so and is atomic. Times are integer milliseconds, passed in.
The same contract suite (tests/server/test_store_contract.py) runs against every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from veil.server.storage.base_extras import ExtrasStore

__all__ = [
    "AccountRow",
    "BatchResult",
    "CapacityExceeded",
    "ClaimedKey",
    "DeviceListRow",
    "DeviceRow",
    "Duplicate",
    "EnvelopeRow",
    "KeyCount",
    "LinkRow",
    "NewEnvelope",
    "PrekeyRow",
    "RegularRow",
    "Store",
    "StoreError",
    "ThreadSummary",
]

DeviceState = Literal["pending", "active"]


class StoreError(Exception):
    """Base class for the few outcomes a store reports by raising."""


class Duplicate(StoreError):
    """A unique key (handle, device id, token hash, link id) is already taken."""


class CapacityExceeded(StoreError):
    """Storing this would exceed a per-device limit; nothing was stored."""


@dataclass(frozen=True, slots=True)
class AccountRow:
    handle: str
    display_name: str
    password_hash: str
    identity_key: str
    created_at: int


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device_id: str
    handle: str
    name: str
    curve25519: str
    ed25519: str
    token_hash: str
    state: DeviceState
    created_at: int
    last_seen: int


@dataclass(frozen=True, slots=True)
class DeviceListRow:
    handle: str
    version: int
    body: str  # the signed list as uploaded, JSON text


@dataclass(frozen=True, slots=True)
class PrekeyRow:
    key_id: str
    key: str
    signature: str


@dataclass(frozen=True, slots=True)
class ClaimedKey:
    device_id: str
    key_id: str
    key: str
    signature: str
    fallback: bool


@dataclass(frozen=True, slots=True)
class KeyCount:
    one_time_keys: int
    fallback_key: bool


@dataclass(frozen=True, slots=True)
class NewEnvelope:
    device_id: str  # recipient device
    kind: int
    sender: str
    sender_device: str
    server_ts: int
    olm_type: int
    body: bytes
    client_message_id: str
    recipient_handle: str = ""  # secret envelopes: the target device's account (envelope_log)
    commitment: bytes = b""  # franking: the sender's commitment, b"" when absent
    franking_tag: bytes = b""  # the server's tag over it, b"" when absent


@dataclass(frozen=True, slots=True)
class EnvelopeRow:
    id: int
    device_id: str
    kind: int
    sender: str
    sender_device: str
    server_ts: int
    olm_type: int
    body: bytes
    client_message_id: str
    commitment: bytes = b""
    franking_tag: bytes = b""


@dataclass(frozen=True, slots=True)
class BatchResult:
    server_ts: int
    count: int
    created: bool  # False: an earlier call with the same (sender_device, client_message_id) answered


@dataclass(frozen=True, slots=True)
class RegularRow:
    id: int  # storage order; 0 before it is stored
    message_id: str
    thread_key: str
    sender: str
    sender_device: str
    recipient: str
    text: str
    ts: int
    client_message_id: str
    kind: str = "text"
    attachment_json: str | None = None  # the Attachment fields as JSON text, or None
    sticker: str = ""
    flagged: bool = False  # matched the server's word list
    hidden_for: str | None = None  # this handle had blocked the sender: never shown to them


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    thread_key: str
    last_ts: int


@dataclass(frozen=True, slots=True)
class LinkRow:
    link_id: str
    handle: str
    creator_device: str
    ephemeral_key: str
    request_json: str | None
    response_ciphertext: str | None
    expires_at: int


class Store(ExtrasStore, Protocol):
    """Everything the services need; the issue-3 methods live in `base_extras.ExtrasStore`."""

    # -- lifecycle -------------------------------------------------------------------------
    async def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""

    async def close(self) -> None:
        """Release every connection."""

    # -- accounts --------------------------------------------------------------------------
    async def create_account(self, account: AccountRow) -> None:
        """Insert; raise Duplicate if the handle exists."""

    async def get_account(self, handle: str) -> AccountRow | None: ...

    async def reset_identity(self, handle: str, identity_key: str, keep_device: str) -> list[str]:
        """Atomically: set the identity key, delete every device of `handle` except
        `keep_device` (with keys and mailboxes), drop the stored device list and set
        `keep_device` back to pending. Returns the deleted device ids."""

    # -- devices ---------------------------------------------------------------------------
    async def create_device(self, device: DeviceRow) -> None:
        """Insert; raise Duplicate if the device id or token hash exists."""

    async def get_device(self, device_id: str) -> DeviceRow | None: ...

    async def device_by_token(self, token_hash: str) -> DeviceRow | None: ...

    async def touch_device(self, device_id: str, now: int) -> None:
        """Set last_seen."""

    async def devices_of(self, handles: Sequence[str], *, active_only: bool = False) -> list[DeviceRow]:
        """Devices of these accounts ordered by (handle, created_at, device_id)."""

    async def delete_device(self, handle: str, device_id: str) -> bool:
        """Atomically delete the device of `handle` with its keys and mailbox; False if none."""

    # -- device lists ----------------------------------------------------------------------
    async def get_device_list(self, handle: str) -> DeviceListRow | None: ...

    async def put_device_list(self, row: DeviceListRow, device_ids: Sequence[str]) -> bool:
        """Atomically store the list only if `row.version` is greater than the stored one,
        and make exactly `device_ids` the account's active devices (others become pending).
        Returns False (and changes nothing) if the stored version is not smaller."""

    # -- prekeys ---------------------------------------------------------------------------
    async def add_prekeys(self, device_id: str, one_time_keys: Sequence[PrekeyRow],
                          fallback: PrekeyRow | None, max_stored: int) -> int:
        """Atomically add one-time keys (a key_id already stored is skipped) and replace the
        fallback key. Raise CapacityExceeded (storing nothing) if the device would then hold
        more than `max_stored` one-time keys. Returns the one-time key count now stored."""

    async def count_prekeys(self, device_id: str) -> KeyCount: ...

    async def claim_prekey(self, device_id: str) -> ClaimedKey | None:
        """Remove and return one one-time key; each is returned at most once even under
        concurrent claims. When none is left, return the fallback key (not removed).
        None if the device has neither."""

    # -- mailboxes -------------------------------------------------------------------------
    async def store_batch(self, sender_device: str, client_message_id: str, server_ts: int,
                          envelopes: Sequence[NewEnvelope], *, count: int | None = None,
                          log: bool = False) -> BatchResult:
        """In one transaction record the batch key and insert every envelope (one multi-row
        INSERT) and, with `log`, one `envelope_log` metadata row per envelope (one more
        INSERT). `count` is the answer recorded for retries (default: len(envelopes)). If the
        key (sender_device, client_message_id) was already recorded, store nothing and
        return the first call's server_ts and count with created=False."""

    async def get_batch(self, sender_device: str, client_message_id: str) -> BatchResult | None:
        """The recorded answer for this batch key (created=False), or None."""

    async def fetch_envelopes(self, device_id: str, *, after_id: int = 0,
                              limit: int = 100) -> list[EnvelopeRow]:
        """The device's envelopes with id > after_id, oldest first."""

    async def delete_envelopes(self, device_id: str, ids: Sequence[int]) -> int:
        """Delete those of `ids` that belong to `device_id`; return how many."""

    async def purge(self, envelopes_before: int, links_before: int) -> int:
        """Delete envelopes (and batch keys) older than `envelopes_before` and links that
        expired before `links_before`; return the number of envelopes deleted."""

    # -- regular threads -------------------------------------------------------------------
    async def store_regular(self, message: RegularRow,
                            envelopes: Sequence[NewEnvelope]) -> tuple[RegularRow, bool]:
        """In one transaction store the message and its fan-out envelopes. If the sender
        already stored a message with this client_message_id, store nothing and return
        (that message, False); else (the stored message with its id, True)."""

    async def regular_by_message_id(self, message_id: str) -> RegularRow | None: ...

    async def regular_history(self, thread_key: str, *, before_id: int | None,
                              limit: int, viewer: str | None = None) -> list[RegularRow]:
        """Up to `limit` newest messages of the thread with id < before_id, newest first;
        with `viewer`, leaving out the messages hidden for that handle."""

    async def threads_of(self, handle: str) -> list[ThreadSummary]:
        """Regular threads `handle` is in (counting only messages not hidden for them), most
        recent first."""

    async def thread_exists(self, thread_key: str) -> bool:
        """Whether the thread holds any message at all."""

    async def store_envelopes(self, envelopes: Sequence[NewEnvelope]) -> None:
        """Insert envelopes that belong to no batch (regular-thread events), in one INSERT."""

    async def delete_regular(self, message_id: str, envelopes: Sequence[NewEnvelope]) -> bool:
        """In one transaction delete the message and insert its fan-out envelopes; False
        (and nothing stored) if it was already gone."""

    async def regular_messages_of(self, handle: str) -> list[RegularRow]:
        """Every regular message sent or received by `handle`, oldest first (admin export)."""

    async def flagged_messages(self) -> list[RegularRow]:
        """Every regular message the word list flagged, oldest first."""

    # -- links -----------------------------------------------------------------------------
    async def create_link(self, link: LinkRow) -> None:
        """Insert; raise Duplicate if the id exists."""

    async def get_link(self, link_id: str) -> LinkRow | None: ...

    async def set_link_request(self, link_id: str, request_json: str) -> bool:
        """Set the request only if none is set yet; False otherwise (or no such link)."""

    async def set_link_response(self, link_id: str, ciphertext: str) -> bool:
        """Set (or replace) the response; False if no such link."""

    async def delete_link(self, link_id: str) -> bool: ...
