"""The Store contract, run against SQLite and PostgreSQL (same tests, real databases)."""

from __future__ import annotations

import asyncio

import pytest

from veil.server.storage.base import (
    AccountRow,
    CapacityExceeded,
    DeviceListRow,
    DeviceRow,
    Duplicate,
    LinkRow,
    NewEnvelope,
    PrekeyRow,
    RegularRow,
)
from veil.server.storage.sql import SqlStore

T0 = 1_700_000_000_000


def account(handle: str) -> AccountRow:
    return AccountRow(handle=handle, display_name=handle.title(), password_hash="h", identity_key="ik",
                      created_at=T0)


def device(device_id: str, handle: str, state: str = "pending") -> DeviceRow:
    return DeviceRow(device_id=device_id, handle=handle, name="phone", curve25519="c" + device_id,
                     ed25519="e" + device_id, token_hash="t" + device_id, state=state,  # type: ignore[arg-type]
                     created_at=T0, last_seen=T0)


def env(device_id: str, ts: int = T0, body: bytes = b"\x00cipher", cmid: str = "m1") -> NewEnvelope:
    return NewEnvelope(device_id=device_id, kind=0, sender="alice", sender_device="ALICE00001", server_ts=ts,
                       olm_type=1, body=body, client_message_id=cmid)


async def setup_people(store: SqlStore) -> None:
    for h in ("alice", "bob"):
        await store.create_account(account(h))
    await store.create_device(device("ALICE00001", "alice"))
    await store.create_device(device("ALICE00002", "alice"))
    await store.create_device(device("BOB0000001", "bob"))


async def test_accounts_and_devices(store: SqlStore) -> None:
    await setup_people(store)
    with pytest.raises(Duplicate):
        await store.create_account(account("alice"))
    assert (await store.get_account("alice")) == account("alice")
    assert await store.get_account("carol") is None
    with pytest.raises(Duplicate):
        await store.create_device(device("ALICE00001", "alice"))
    found = await store.device_by_token("tALICE00002")
    assert found is not None and found.device_id == "ALICE00002"
    await store.touch_device("ALICE00002", T0 + 5)
    assert (await store.get_device("ALICE00002")).last_seen == T0 + 5  # type: ignore[union-attr]
    assert [d.device_id for d in await store.devices_of(["alice", "bob"])] == ["ALICE00001", "ALICE00002",
                                                                               "BOB0000001"]
    assert await store.devices_of(["alice"], active_only=True) == []


async def test_delete_device_removes_keys_and_mailbox(store: SqlStore) -> None:
    await setup_people(store)
    await store.add_prekeys("BOB0000001", [PrekeyRow("k1", "K", "S")], PrekeyRow("f", "F", "S"), 200)
    await store.store_batch("ALICE00001", "m1", T0, [env("BOB0000001")])
    assert not await store.delete_device("alice", "BOB0000001")  # not alice's
    assert await store.delete_device("bob", "BOB0000001")
    assert await store.get_device("BOB0000001") is None
    assert await store.device_by_token("tBOB0000001") is None
    assert await store.fetch_envelopes("BOB0000001") == []
    assert (await store.count_prekeys("BOB0000001")).one_time_keys == 0
    assert await store.claim_prekey("BOB0000001") is None


async def test_reset_identity(store: SqlStore) -> None:
    await setup_people(store)
    await store.put_device_list(DeviceListRow("alice", 1, "{}"), ["ALICE00001", "ALICE00002"])
    gone = await store.reset_identity("alice", "new-ik", keep_device="ALICE00002")
    assert gone == ["ALICE00001"]
    assert (await store.get_account("alice")).identity_key == "new-ik"  # type: ignore[union-attr]
    assert await store.get_device_list("alice") is None
    kept = await store.get_device("ALICE00002")
    assert kept is not None and kept.state == "pending"


async def test_device_list_versions_grow(store: SqlStore) -> None:
    await setup_people(store)
    assert await store.put_device_list(DeviceListRow("alice", 2, '{"v":2}'), ["ALICE00001"])
    assert not await store.put_device_list(DeviceListRow("alice", 2, '{"v":"again"}'), ["ALICE00002"])
    assert not await store.put_device_list(DeviceListRow("alice", 1, '{"v":1}'), ["ALICE00002"])
    assert (await store.get_device_list("alice")) == DeviceListRow("alice", 2, '{"v":2}')
    assert [d.device_id for d in await store.devices_of(["alice"], active_only=True)] == ["ALICE00001"]
    assert await store.put_device_list(DeviceListRow("alice", 3, '{"v":3}'), ["ALICE00002"])
    # Exactly the listed devices are active: the dropped one goes back to pending.
    assert [d.device_id for d in await store.devices_of(["alice"], active_only=True)] == ["ALICE00002"]


async def test_concurrent_device_list_uploads_one_wins(store: SqlStore) -> None:
    await setup_people(store)
    results = await asyncio.gather(*(store.put_device_list(DeviceListRow("alice", 5, f'{{"n":{i}}}'),
                                                           ["ALICE00001"]) for i in range(5)))
    assert sorted(results) == [False] * 4 + [True]


async def test_prekeys_upload_count_and_capacity(store: SqlStore) -> None:
    await setup_people(store)
    keys = [PrekeyRow(f"k{i}", f"K{i}", "S") for i in range(5)]
    assert await store.add_prekeys("BOB0000001", keys, None, 200) == 5
    # Re-uploading a key id already stored is skipped, not an error.
    assert await store.add_prekeys("BOB0000001", [*keys[:2], PrekeyRow("k9", "K9", "S")], None, 200) == 6
    c = await store.count_prekeys("BOB0000001")
    assert (c.one_time_keys, c.fallback_key) == (6, False)
    with pytest.raises(CapacityExceeded):
        await store.add_prekeys("BOB0000001", [PrekeyRow(f"x{i}", "K", "S") for i in range(5)], None, 10)
    assert (await store.count_prekeys("BOB0000001")).one_time_keys == 6  # nothing stored
    await store.add_prekeys("BOB0000001", [], PrekeyRow("f1", "F1", "S"), 200)
    await store.add_prekeys("BOB0000001", [], PrekeyRow("f2", "F2", "S"), 200)  # replaces
    assert (await store.count_prekeys("BOB0000001")).fallback_key


async def test_claim_hands_each_key_out_once_then_fallback(store: SqlStore) -> None:
    await setup_people(store)
    await store.add_prekeys("BOB0000001", [PrekeyRow(f"k{i}", f"K{i}", "S") for i in range(10)],
                            PrekeyRow("fb", "FB", "S"), 200)
    claims = await asyncio.gather(*(store.claim_prekey("BOB0000001") for _ in range(20)))
    assert all(c is not None for c in claims)
    one_time = [c.key_id for c in claims if c is not None and not c.fallback]
    fallback = [c for c in claims if c is not None and c.fallback]
    assert sorted(one_time) == sorted(f"k{i}" for i in range(10))  # each exactly once
    assert len(fallback) == 10 and {c.key_id for c in fallback} == {"fb"}
    assert (await store.count_prekeys("BOB0000001")).one_time_keys == 0
    again = await store.claim_prekey("BOB0000001")
    assert again is not None and again.fallback and again.key == "FB"  # the fallback stays
    assert await store.claim_prekey("ALICE00001") is None  # no keys at all


async def test_batch_is_atomic_and_idempotent(store: SqlStore) -> None:
    await setup_people(store)
    first = await store.store_batch("ALICE00001", "m1", T0, [env("BOB0000001"), env("ALICE00002")])
    assert (first.server_ts, first.count, first.created) == (T0, 2, True)
    again = await store.store_batch("ALICE00001", "m1", T0 + 99, [env("BOB0000001", T0 + 99)])
    assert (again.server_ts, again.count, again.created) == (T0, 2, False)
    assert await store.get_batch("ALICE00001", "m1") == again
    assert await store.get_batch("ALICE00001", "other") is None
    assert len(await store.fetch_envelopes("BOB0000001")) == 1
    # One envelope for a device that does not exist fails the whole batch: nothing is stored.
    with pytest.raises(Exception):  # noqa: B017 - the backend's integrity error
        await store.store_batch("ALICE00001", "m2", T0, [env("BOB0000001", cmid="m2"), env("NOSUCHDEV0")])
    assert len(await store.fetch_envelopes("BOB0000001")) == 1
    assert await store.get_batch("ALICE00001", "m2") is None


async def test_concurrent_retries_store_once(store: SqlStore) -> None:
    await setup_people(store)
    results = await asyncio.gather(*(store.store_batch("ALICE00001", "dup", T0, [env("BOB0000001")])
                                     for _ in range(6)))
    assert sum(r.created for r in results) == 1
    assert len(await store.fetch_envelopes("BOB0000001")) == 1


async def test_fetch_order_ack_and_purge(store: SqlStore) -> None:
    await setup_people(store)
    for i in range(5):
        await store.store_batch("ALICE00001", f"m{i}", T0 + i, [env("BOB0000001", T0 + i, bytes([i]) * 3,
                                                                    f"m{i}")])
    rows = await store.fetch_envelopes("BOB0000001")
    assert [r.body for r in rows] == [bytes([i]) * 3 for i in range(5)]
    assert [r.client_message_id for r in rows] == [f"m{i}" for i in range(5)]
    assert [r.id for r in await store.fetch_envelopes("BOB0000001", after_id=rows[1].id, limit=2)] == \
        [rows[2].id, rows[3].id]
    # Ack only deletes the caller's own envelopes.
    assert await store.delete_envelopes("ALICE00001", [rows[0].id]) == 0
    assert await store.delete_envelopes("BOB0000001", [rows[0].id, rows[1].id, 999999]) == 2
    assert await store.delete_envelopes("BOB0000001", []) == 0
    assert await store.purge(envelopes_before=T0 + 3, links_before=T0) == 1  # ts T0+2
    assert [r.server_ts for r in await store.fetch_envelopes("BOB0000001")] == [T0 + 3, T0 + 4]
    assert await store.get_batch("ALICE00001", "m0") is None  # batch keys are purged too


def regular(n: int, sender: str = "alice", cmid: str | None = None) -> RegularRow:
    return RegularRow(id=0, message_id=f"msg{n}", thread_key="alice|bob", sender=sender,
                      sender_device="ALICE00001" if sender == "alice" else "BOB0000001",
                      recipient="bob" if sender == "alice" else "alice", text=f"hello {n}", ts=T0 + n,
                      client_message_id=cmid or f"c{n}")


async def test_regular_messages_history_and_threads(store: SqlStore) -> None:
    await setup_people(store)
    for n in range(7):
        row, created = await store.store_regular(regular(n, "alice" if n % 2 == 0 else "bob"),
                                                 [env("BOB0000001", cmid=f"c{n}")])
        assert created and row.id > 0
    dup, created = await store.store_regular(regular(99, cmid="c0"), [env("BOB0000001")])
    assert not created and dup.message_id == "msg0"
    assert len(await store.fetch_envelopes("BOB0000001")) == 7  # the duplicate fanned out nothing
    newest = await store.regular_history("alice|bob", before_id=None, limit=3)
    assert [m.message_id for m in newest] == ["msg6", "msg5", "msg4"]
    older = await store.regular_history("alice|bob", before_id=newest[-1].id, limit=3)
    assert [m.message_id for m in older] == ["msg3", "msg2", "msg1"]
    oldest = await store.regular_history("alice|bob", before_id=older[-1].id, limit=3)
    assert [m.message_id for m in oldest] == ["msg0"]
    assert (await store.regular_by_message_id("msg3")) == older[0]
    assert await store.regular_by_message_id("nope") is None
    await store.create_account(account("carol"))
    carol = RegularRow(0, "msgc", "alice|carol", "carol", "CAROL00001", "alice", "hi", T0 + 100, "cc")
    await store.store_regular(carol, [])
    assert [(t.thread_key, t.last_ts) for t in await store.threads_of("alice")] == [
        ("alice|carol", T0 + 100), ("alice|bob", T0 + 6)]
    assert [t.thread_key for t in await store.threads_of("bob")] == ["alice|bob"]


async def test_links(store: SqlStore) -> None:
    await setup_people(store)
    link = LinkRow("ABCDEFGH", "alice", "ALICE00001", "eph", None, None, T0 + 600_000)
    await store.create_link(link)
    with pytest.raises(Duplicate):
        await store.create_link(link)
    assert await store.get_link("ABCDEFGH") == link
    assert await store.set_link_request("ABCDEFGH", '{"x":1}')
    assert not await store.set_link_request("ABCDEFGH", '{"x":2}')  # once only
    assert await store.set_link_response("ABCDEFGH", "sealed")
    got = await store.get_link("ABCDEFGH")
    assert got is not None and (got.request_json, got.response_ciphertext) == ('{"x":1}', "sealed")
    assert not await store.set_link_request("ZZZZZZZZ", "{}")
    assert not await store.set_link_response("ZZZZZZZZ", "x")
    await store.purge(envelopes_before=0, links_before=T0 + 600_001)  # expired links go
    assert await store.get_link("ABCDEFGH") is None
    await store.create_link(link)
    assert await store.delete_link("ABCDEFGH")
    assert not await store.delete_link("ABCDEFGH")


async def test_migrate_is_idempotent(store: SqlStore) -> None:
    await store.migrate()
    await store.create_account(account("dave"))
    await store.migrate()
    assert await store.get_account("dave") is not None
