"""The issue-3 part of the Store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from tests.server.test_server_store import T0, env, setup_people
from veil.server.storage.base import RegularRow
from veil.server.storage.base_extras import BlobRow, LogRow, ReportRow
from veil.server.storage.sql import SqlStore


async def test_server_secret_first_writer_wins(store: SqlStore) -> None:
    got = await asyncio.gather(*(store.server_secret("k", bytes([i]) * 32) for i in range(5)))
    assert len(set(got)) == 1 and got[0] in {bytes([i]) * 32 for i in range(5)}
    assert await store.server_secret("k", b"other") == got[0]


async def test_blocks(store: SqlStore) -> None:
    await setup_people(store)
    await store.add_block("alice", "bob", T0)
    await store.add_block("alice", "bob", T0 + 1)
    await store.add_block("alice", "carol", T0)
    assert await store.blocked_by("alice") == ["bob", "carol"]
    assert await store.is_blocked("alice", "bob") and not await store.is_blocked("bob", "alice")
    assert await store.remove_block("alice", "bob") and not await store.remove_block("alice", "bob")
    assert await store.blocked_by("alice") == ["carol"]


async def test_blobs(store: SqlStore) -> None:
    row = BlobRow(blob_id="b1", uploader="alice", uploader_device="ALICE00001", size=3,
                  created_at=T0, expires_at=T0 + 10, downloads_wanted=2)
    await store.create_blob(row)
    await store.create_blob(replace(row, blob_id="b2", expires_at=T0 + 100))
    assert await store.get_blob("b1") == row
    assert await store.record_download("b1", "D1") == 1
    assert await store.record_download("b1", "D1") == 1
    assert await store.record_download("b1", "D2") == 2
    assert await store.record_download("nope", "D1") == 0
    assert await store.delete_expired_blobs(T0 + 10) == ["b1"]
    assert await store.get_blob("b1") is None
    assert await store.delete_blob("b2") and not await store.delete_blob("b2")


async def test_batches_log_and_carry_franking(store: SqlStore) -> None:
    await setup_people(store)
    base = env("BOB0000001")
    franked = replace(base, recipient_handle="bob", commitment=b"c" * 32, franking_tag=b"t" * 32)
    own = replace(franked, device_id="ALICE00002", recipient_handle="alice")
    res = await store.store_batch("ALICE00001", "m1", T0, [franked, own], count=3, log=True)
    assert res.count == 3 and (await store.get_batch("ALICE00001", "m1")).count == 3  # type: ignore[union-attr]
    [got] = await store.fetch_envelopes("BOB0000001")
    assert (got.commitment, got.franking_tag) == (b"c" * 32, b"t" * 32)
    assert (await store.fetch_envelopes("ALICE00002"))[0].commitment == b"c" * 32
    size = len(base.body)
    assert await store.envelope_log_of("bob") == [LogRow("alice", "ALICE00001", "bob", "BOB0000001", T0, size)]
    assert len(await store.envelope_log_of("alice")) == 2
    await store.store_batch("ALICE00001", "m2", T0, [env("BOB0000001", cmid="m2")])  # no log asked for
    assert len(await store.envelope_log_of("bob")) == 1
    [plain] = [e for e in await store.fetch_envelopes("BOB0000001") if e.client_message_id == "m2"]
    assert (plain.commitment, plain.franking_tag) == (b"", b"")


async def test_metadata_log_is_purged_by_age(store: SqlStore) -> None:
    await setup_people(store)
    assert await store.purge_envelope_log(T0 + 10**9) == 0  # an empty log
    for i in range(25):  # one log row per minute
        row = replace(env("BOB0000001", T0 + i * 60_000, cmid=f"m{i}"), recipient_handle="bob")
        await store.store_batch("ALICE00001", f"m{i}", T0 + i * 60_000, [row], log=True)
    assert await store.purge_envelope_log(T0) == 0  # nothing older than the first row
    assert await store.purge_envelope_log(T0 + 10 * 60_000) == 10  # rows 0..9
    assert [r.server_ts for r in await store.envelope_log_of("bob")] == [T0 + i * 60_000 for i in range(10, 25)]
    assert await store.purge_envelope_log(T0 + 10 * 60_000) == 0  # idempotent
    assert await store.purge_envelope_log(T0 + 24 * 60_000 + 1) == 15
    assert await store.envelope_log_of("bob") == []


def regular(n: int, sender: str = "alice", hidden_for: str | None = None, flagged: bool = False) -> RegularRow:
    return RegularRow(id=0, message_id=f"m{n}", thread_key="alice|bob", sender=sender, sender_device="D",
                      recipient="bob" if sender == "alice" else "alice", text=f"t{n}", ts=T0 + n,
                      client_message_id=f"c{n}", kind="image" if n == 1 else "text",
                      attachment_json='{"blob_id":"b"}' if n == 1 else None, flagged=flagged,
                      hidden_for=hidden_for)


async def test_regular_extras(store: SqlStore) -> None:
    await setup_people(store)
    assert not await store.thread_exists("alice|bob")
    stored, _ = await store.store_regular(regular(1), [])
    assert (stored.kind, stored.attachment_json) == ("image", '{"blob_id":"b"}')
    await store.store_regular(regular(2, hidden_for="bob", flagged=True), [])
    assert await store.thread_exists("alice|bob")
    assert [r.message_id for r in await store.regular_history("alice|bob", before_id=None, limit=9,
                                                              viewer="bob")] == ["m1"]
    assert len(await store.regular_history("alice|bob", before_id=None, limit=9, viewer="alice")) == 2
    assert [t.last_ts for t in await store.threads_of("bob")] == [T0 + 1]
    assert [r.message_id for r in await store.flagged_messages()] == ["m2"]
    assert [r.message_id for r in await store.regular_messages_of("bob")] == ["m1", "m2"]
    assert await store.delete_regular("m1", [env("BOB0000001", cmid="unsend")])
    assert not await store.delete_regular("m1", [env("BOB0000001", cmid="again")])
    assert [e.client_message_id for e in await store.fetch_envelopes("BOB0000001")] == ["unsend"]
    await store.store_envelopes([env("BOB0000001", cmid="typing")])
    assert len(await store.fetch_envelopes("BOB0000001")) == 2


async def test_reports(store: SqlStore) -> None:
    rows = [ReportRow(report_id=f"r{i}", created_at=T0 + i, reporter="bob", reporter_device="B", peer="alice",
                      kind="secret", verdict="verified", reason="", content_json="[]") for i in (2, 1)]
    for r in rows:
        await store.create_report(r)
    assert await store.list_reports() == rows[::-1]
