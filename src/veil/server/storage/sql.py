"""`SqlStore`: the one `Store` implementation, SQLAlchemy Core over aiosqlite or asyncpg.

Dialect differences live in `dialect.py`. Every method runs in its own transaction; methods
that write open it as a writer so SQLite queues them instead of failing mid-transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from veil.server.storage.base import (
    AccountRow,
    BatchResult,
    CapacityExceeded,
    ClaimedKey,
    DeviceListRow,
    DeviceRow,
    Duplicate,
    EnvelopeRow,
    KeyCount,
    LinkRow,
    NewEnvelope,
    PrekeyRow,
    RegularRow,
    ThreadSummary,
)
from veil.server.storage.dialect import claim_one_time_key, fallback_key, insert_ignore, upsert
from veil.server.storage.schema import (
    accounts,
    device_lists,
    devices,
    envelope_log,
    envelopes,
    fallback_keys,
    links,
    one_time_keys,
    regular_messages,
    sent_batches,
)
from veil.server.storage.sql_extras import SqlExtras

__all__ = ["SqlStore"]


def _device(r: Row[Any]) -> DeviceRow:
    return DeviceRow(device_id=r.device_id, handle=r.handle, name=r.name, curve25519=r.curve25519,
                     ed25519=r.ed25519, token_hash=r.token_hash, state=r.state, created_at=r.created_at,
                     last_seen=r.last_seen)


def _regular(r: Row[Any]) -> RegularRow:
    return RegularRow(id=r.id, message_id=r.message_id, thread_key=r.thread_key, sender=r.sender,
                      sender_device=r.sender_device, recipient=r.recipient, text=r.text, ts=r.ts,
                      client_message_id=r.client_message_id, kind=r.kind, attachment_json=r.attachment_json,
                      sticker=r.sticker, flagged=bool(r.flagged), hidden_for=r.hidden_for)


def _envelope_values(envs: Sequence[NewEnvelope]) -> list[dict[str, Any]]:
    return [{"device_id": e.device_id, "kind": e.kind, "sender": e.sender, "sender_device": e.sender_device,
             "server_ts": e.server_ts, "olm_type": e.olm_type, "body": e.body,
             "client_message_id": e.client_message_id, "commitment": e.commitment or None,
             "franking_tag": e.franking_tag or None} for e in envs]


def _log_values(envs: Sequence[NewEnvelope]) -> list[dict[str, Any]]:
    return [{"sender": e.sender, "sender_device": e.sender_device, "recipient_handle": e.recipient_handle,
             "recipient_device": e.device_id, "server_ts": e.server_ts, "size": len(e.body)} for e in envs]


def _visible_to(viewer: str) -> ColumnElement[bool]:
    hidden = regular_messages.c.hidden_for
    return or_(hidden.is_(None), hidden != viewer)


class SqlStore(SqlExtras):
    """Core tables here; the issue-3 tables in `sql_extras.SqlExtras`."""

    # -- accounts --------------------------------------------------------------------------
    async def create_account(self, account: AccountRow) -> None:
        async with self._write() as conn:
            res = await conn.execute(insert_ignore(conn, accounts).values(
                handle=account.handle, display_name=account.display_name,
                password_hash=account.password_hash, identity_key=account.identity_key,
                created_at=account.created_at))
            if res.rowcount == 0:
                raise Duplicate(account.handle)

    async def get_account(self, handle: str) -> AccountRow | None:
        async with self._read() as conn:
            r = (await conn.execute(select(accounts).where(accounts.c.handle == handle))).first()
        if r is None:
            return None
        return AccountRow(handle=r.handle, display_name=r.display_name, password_hash=r.password_hash,
                          identity_key=r.identity_key, created_at=r.created_at)

    async def reset_identity(self, handle: str, identity_key: str, keep_device: str) -> list[str]:
        async with self._write() as conn:
            await conn.execute(update(accounts).where(accounts.c.handle == handle)
                               .values(identity_key=identity_key))
            others = list((await conn.execute(
                select(devices.c.device_id).where(devices.c.handle == handle,
                                                  devices.c.device_id != keep_device))).scalars())
            for device_id in others:
                await self._delete_device_rows(conn, device_id)
            await conn.execute(delete(device_lists).where(device_lists.c.handle == handle))
            await conn.execute(update(devices).where(devices.c.device_id == keep_device)
                               .values(state="pending"))
        return others

    # -- devices ---------------------------------------------------------------------------
    async def create_device(self, device: DeviceRow) -> None:
        try:
            async with self._write() as conn:
                await conn.execute(insert(devices).values(
                    device_id=device.device_id, handle=device.handle, name=device.name,
                    curve25519=device.curve25519, ed25519=device.ed25519, token_hash=device.token_hash,
                    state=device.state, created_at=device.created_at, last_seen=device.last_seen))
        except IntegrityError as exc:
            raise Duplicate("device id or token hash taken") from exc

    async def get_device(self, device_id: str) -> DeviceRow | None:
        async with self._read() as conn:
            r = (await conn.execute(select(devices).where(devices.c.device_id == device_id))).first()
        return None if r is None else _device(r)

    async def device_by_token(self, token_hash: str) -> DeviceRow | None:
        async with self._read() as conn:
            r = (await conn.execute(select(devices).where(devices.c.token_hash == token_hash))).first()
        return None if r is None else _device(r)

    async def touch_device(self, device_id: str, now: int) -> None:
        async with self._write() as conn:
            await conn.execute(update(devices).where(devices.c.device_id == device_id).values(last_seen=now))

    async def devices_of(self, handles: Sequence[str], *, active_only: bool = False) -> list[DeviceRow]:
        cond: ColumnElement[bool] = devices.c.handle.in_(list(handles))
        if active_only:
            cond = and_(cond, devices.c.state == "active")
        async with self._read() as conn:
            rows = (await conn.execute(select(devices).where(cond).order_by(
                devices.c.handle, devices.c.created_at, devices.c.device_id))).all()
        return [_device(r) for r in rows]

    @staticmethod
    async def _delete_device_rows(conn: AsyncConnection, device_id: str) -> None:
        for table in (one_time_keys, fallback_keys, envelopes):
            await conn.execute(delete(table).where(table.c.device_id == device_id))
        await conn.execute(delete(devices).where(devices.c.device_id == device_id))

    async def delete_device(self, handle: str, device_id: str) -> bool:
        async with self._write() as conn:
            found = (await conn.execute(select(devices.c.device_id).where(
                devices.c.device_id == device_id, devices.c.handle == handle))).first()
            if found is None:
                return False
            await self._delete_device_rows(conn, device_id)
        return True

    # -- device lists ----------------------------------------------------------------------
    async def get_device_list(self, handle: str) -> DeviceListRow | None:
        async with self._read() as conn:
            r = (await conn.execute(select(device_lists).where(device_lists.c.handle == handle))).first()
        return None if r is None else DeviceListRow(handle=r.handle, version=r.version, body=r.body)

    async def put_device_list(self, row: DeviceListRow, device_ids: Sequence[str]) -> bool:
        dl = device_lists.c
        async with self._write() as conn:
            # A conditional UPDATE, then INSERT-if-absent: correct under concurrent uploads
            # without locking reads, on both backends.
            res = await conn.execute(update(device_lists)
                                     .where(dl.handle == row.handle, dl.version < row.version)
                                     .values(version=row.version, body=row.body))
            if res.rowcount == 0:
                res = await conn.execute(insert_ignore(conn, device_lists).values(
                    handle=row.handle, version=row.version, body=row.body))
                if res.rowcount == 0:
                    return False
            ids = list(device_ids)
            await conn.execute(update(devices).where(devices.c.handle == row.handle,
                                                     devices.c.device_id.in_(ids)).values(state="active"))
            await conn.execute(update(devices).where(devices.c.handle == row.handle,
                                                     devices.c.device_id.not_in(ids)).values(state="pending"))
        return True

    # -- prekeys ---------------------------------------------------------------------------
    async def add_prekeys(self, device_id: str, one_time_keys_: Sequence[PrekeyRow],
                          fallback: PrekeyRow | None, max_stored: int) -> int:
        otk = one_time_keys.c
        async with self._write() as conn:
            wanted = {k.key_id: k for k in one_time_keys_}
            have = set((await conn.execute(select(otk.key_id).where(
                otk.device_id == device_id, otk.key_id.in_(list(wanted))))).scalars()) if wanted else set()
            new = [k for kid, k in wanted.items() if kid not in have]
            count = await self._count_otks(conn, device_id)
            if count + len(new) > max_stored:
                raise CapacityExceeded(f"at most {max_stored} one-time keys are stored per device")
            if new:
                await conn.execute(insert_ignore(conn, one_time_keys).values(
                    [{"device_id": device_id, "key_id": k.key_id, "key": k.key, "signature": k.signature}
                     for k in new]))
            if fallback is not None:
                await conn.execute(upsert(conn, fallback_keys, ["device_id"], {
                    "device_id": device_id, "key_id": fallback.key_id, "key": fallback.key,
                    "signature": fallback.signature}))
            return count + len(new)

    @staticmethod
    async def _count_otks(conn: AsyncConnection, device_id: str) -> int:
        n = (await conn.execute(select(func.count()).select_from(one_time_keys)
                                .where(one_time_keys.c.device_id == device_id))).scalar_one()
        return int(n)

    async def count_prekeys(self, device_id: str) -> KeyCount:
        async with self._read() as conn:
            n = await self._count_otks(conn, device_id)
            fb = await fallback_key(conn, device_id)
        return KeyCount(one_time_keys=n, fallback_key=fb is not None)

    async def claim_prekey(self, device_id: str) -> ClaimedKey | None:
        async with self._write() as conn:
            got = await claim_one_time_key(conn, device_id)
            if got is not None:
                return ClaimedKey(device_id, got[0], got[1], got[2], fallback=False)
            fb = await fallback_key(conn, device_id)
        return None if fb is None else ClaimedKey(device_id, fb[0], fb[1], fb[2], fallback=True)

    # -- mailboxes -------------------------------------------------------------------------
    async def store_batch(self, sender_device: str, client_message_id: str, server_ts: int,
                          envelopes_: Sequence[NewEnvelope], *, count: int | None = None,
                          log: bool = False) -> BatchResult:
        sb = sent_batches.c
        answer = len(envelopes_) if count is None else count
        async with self._write() as conn:
            # Claim the idempotency key first: a concurrent retry waits on it, then sees it taken.
            res = await conn.execute(insert_ignore(conn, sent_batches).values(
                sender_device=sender_device, client_message_id=client_message_id, server_ts=server_ts,
                count=answer))
            if res.rowcount == 0:
                first = (await conn.execute(select(sb.server_ts, sb.count.label("n")).where(
                    sb.sender_device == sender_device, sb.client_message_id == client_message_id))).one()
                return BatchResult(server_ts=first.server_ts, count=first.n, created=False)
            if envelopes_:
                # One multi-row INSERT for the whole batch, and one for its metadata log.
                await conn.execute(insert(envelopes).values(_envelope_values(envelopes_)))
                if log:
                    await conn.execute(insert(envelope_log).values(_log_values(envelopes_)))
        return BatchResult(server_ts=server_ts, count=answer, created=True)

    async def get_batch(self, sender_device: str, client_message_id: str) -> BatchResult | None:
        sb = sent_batches.c
        async with self._read() as conn:
            r = (await conn.execute(select(sb.server_ts, sb.count.label("n")).where(
                sb.sender_device == sender_device, sb.client_message_id == client_message_id))).first()
        return None if r is None else BatchResult(server_ts=r.server_ts, count=r.n, created=False)

    async def fetch_envelopes(self, device_id: str, *, after_id: int = 0,
                              limit: int = 100) -> list[EnvelopeRow]:
        e = envelopes.c
        async with self._read() as conn:
            rows = (await conn.execute(select(envelopes).where(e.device_id == device_id, e.id > after_id)
                                       .order_by(e.id).limit(limit))).all()
        return [EnvelopeRow(id=r.id, device_id=r.device_id, kind=r.kind, sender=r.sender,
                            sender_device=r.sender_device, server_ts=r.server_ts, olm_type=r.olm_type,
                            body=bytes(r.body), client_message_id=r.client_message_id,
                            commitment=bytes(r.commitment or b""), franking_tag=bytes(r.franking_tag or b""))
                for r in rows]

    async def delete_envelopes(self, device_id: str, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        async with self._write() as conn:
            res = await conn.execute(delete(envelopes).where(envelopes.c.device_id == device_id,
                                                             envelopes.c.id.in_(list(ids))))
        return int(res.rowcount)

    async def purge(self, envelopes_before: int, links_before: int) -> int:
        async with self._write() as conn:
            res = await conn.execute(delete(envelopes).where(envelopes.c.server_ts < envelopes_before))
            await conn.execute(delete(sent_batches).where(sent_batches.c.server_ts < envelopes_before))
            await conn.execute(delete(links).where(links.c.expires_at < links_before))
        return int(res.rowcount)

    # -- regular threads -------------------------------------------------------------------
    async def store_regular(self, message: RegularRow,
                            envelopes_: Sequence[NewEnvelope]) -> tuple[RegularRow, bool]:
        rm = regular_messages.c
        async with self._write() as conn:
            new_id = (await conn.execute(insert_ignore(conn, regular_messages).values(
                message_id=message.message_id, thread_key=message.thread_key, sender=message.sender,
                sender_device=message.sender_device, recipient=message.recipient, text=message.text,
                ts=message.ts, client_message_id=message.client_message_id, kind=message.kind,
                attachment_json=message.attachment_json, sticker=message.sticker, flagged=message.flagged,
                hidden_for=message.hidden_for).returning(rm.id))).scalar()
            if new_id is None:
                r = (await conn.execute(select(regular_messages).where(
                    rm.sender == message.sender, rm.client_message_id == message.client_message_id))).one()
                return _regular(r), False
            if envelopes_:
                await conn.execute(insert(envelopes).values(_envelope_values(envelopes_)))
        return dataclasses.replace(message, id=new_id), True

    async def regular_by_message_id(self, message_id: str) -> RegularRow | None:
        async with self._read() as conn:
            r = (await conn.execute(select(regular_messages)
                                    .where(regular_messages.c.message_id == message_id))).first()
        return None if r is None else _regular(r)

    async def regular_history(self, thread_key: str, *, before_id: int | None,
                              limit: int, viewer: str | None = None) -> list[RegularRow]:
        rm = regular_messages.c
        q = select(regular_messages).where(rm.thread_key == thread_key)
        if before_id is not None:
            q = q.where(rm.id < before_id)
        if viewer is not None:
            q = q.where(_visible_to(viewer))
        async with self._read() as conn:
            rows = (await conn.execute(q.order_by(rm.id.desc()).limit(limit))).all()
        return [_regular(r) for r in rows]

    async def threads_of(self, handle: str) -> list[ThreadSummary]:
        rm = regular_messages.c
        last = func.max(rm.ts).label("last_ts")
        async with self._read() as conn:
            rows = (await conn.execute(select(rm.thread_key, last)
                                       .where(or_(rm.sender == handle, rm.recipient == handle),
                                              _visible_to(handle))
                                       .group_by(rm.thread_key).order_by(last.desc(), rm.thread_key))).all()
        return [ThreadSummary(thread_key=r.thread_key, last_ts=int(r.last_ts)) for r in rows]

    async def thread_exists(self, thread_key: str) -> bool:
        rm = regular_messages.c
        async with self._read() as conn:
            r = (await conn.execute(select(rm.id).where(rm.thread_key == thread_key).limit(1))).first()
        return r is not None

    async def store_envelopes(self, envelopes_: Sequence[NewEnvelope]) -> None:
        if envelopes_:
            async with self._write() as conn:
                await conn.execute(insert(envelopes).values(_envelope_values(envelopes_)))

    async def delete_regular(self, message_id: str, envelopes_: Sequence[NewEnvelope]) -> bool:
        async with self._write() as conn:
            res = await conn.execute(delete(regular_messages)
                                     .where(regular_messages.c.message_id == message_id))
            if res.rowcount == 0:
                return False
            if envelopes_:
                await conn.execute(insert(envelopes).values(_envelope_values(envelopes_)))
        return True

    async def regular_messages_of(self, handle: str) -> list[RegularRow]:
        rm = regular_messages.c
        async with self._read() as conn:
            rows = (await conn.execute(select(regular_messages)
                                       .where(or_(rm.sender == handle, rm.recipient == handle))
                                       .order_by(rm.id))).all()
        return [_regular(r) for r in rows]

    async def flagged_messages(self) -> list[RegularRow]:
        rm = regular_messages.c
        async with self._read() as conn:
            rows = (await conn.execute(select(regular_messages).where(rm.flagged.is_(True))
                                       .order_by(rm.id))).all()
        return [_regular(r) for r in rows]

    # -- links -----------------------------------------------------------------------------
    async def create_link(self, link: LinkRow) -> None:
        async with self._write() as conn:
            res = await conn.execute(insert_ignore(conn, links).values(
                link_id=link.link_id, handle=link.handle, creator_device=link.creator_device,
                ephemeral_key=link.ephemeral_key, request_json=link.request_json,
                response_ciphertext=link.response_ciphertext, expires_at=link.expires_at))
            if res.rowcount == 0:
                raise Duplicate(link.link_id)

    async def get_link(self, link_id: str) -> LinkRow | None:
        async with self._read() as conn:
            r = (await conn.execute(select(links).where(links.c.link_id == link_id))).first()
        if r is None:
            return None
        return LinkRow(link_id=r.link_id, handle=r.handle, creator_device=r.creator_device,
                       ephemeral_key=r.ephemeral_key, request_json=r.request_json,
                       response_ciphertext=r.response_ciphertext, expires_at=r.expires_at)

    async def set_link_request(self, link_id: str, request_json: str) -> bool:
        async with self._write() as conn:
            res = await conn.execute(update(links).where(links.c.link_id == link_id,
                                                         links.c.request_json.is_(None))
                                     .values(request_json=request_json))
        return bool(res.rowcount)

    async def set_link_response(self, link_id: str, ciphertext: str) -> bool:
        async with self._write() as conn:
            res = await conn.execute(update(links).where(links.c.link_id == link_id)
                                     .values(response_ciphertext=ciphertext))
        return bool(res.rowcount)

    async def delete_link(self, link_id: str) -> bool:
        async with self._write() as conn:
            res = await conn.execute(delete(links).where(links.c.link_id == link_id))
        return bool(res.rowcount)
