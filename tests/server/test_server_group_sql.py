"""The group writer's raw SQL (storage/group_sql.py) on SQLite and PostgreSQL: one transaction per
group, ids in order, retries answered as the first call, acks deleting only the named device's
rows, and `fetch` (the streams' mailbox read) returning exactly what the Store returns."""

from __future__ import annotations

import dataclasses

from tests.server.test_server_store import T0, env, setup_people
from veil.server.storage.base import NewEnvelope
from veil.server.storage.group_sql import BatchIn, group_backend
from veil.server.storage.sql import SqlStore


def _rows(n: int, device_id: str = "BOB0000001", cmid: str = "m1") -> list[NewEnvelope]:
    return [dataclasses.replace(env(device_id, T0 + i, body=b"body%d" % i, cmid=cmid), commitment=b"c" * 32,
                                franking_tag=b"t" * 32, recipient_handle="bob") for i in range(n)]


async def test_group_write_fetch_ack_and_retry(store: SqlStore) -> None:
    await setup_people(store)
    backend = group_backend(store.engine)
    try:
        first = BatchIn("ALICE00001", "m1", T0, 3, _rows(3))
        second = BatchIn("ALICE00001", "m2", T0 + 1, 1, _rows(1, "ALICE00002", "m2"))
        out, deleted = await backend.write([first, second], [])
        assert deleted == 0
        assert [o.created for o in out] == [True, True]
        ids = out[0].ids
        assert len(ids) == 3 and ids == sorted(ids) and len(out[1].ids) == 1

        fetched = await backend.fetch("BOB0000001", 0, 100)
        assert fetched == await store.fetch_envelopes("BOB0000001")  # same rows as the Store's read
        assert [e.id for e in fetched] == ids
        assert [e.body for e in fetched] == [b"body0", b"body1", b"body2"]
        assert fetched[0].commitment == b"c" * 32 and fetched[0].franking_tag == b"t" * 32
        assert [e.id for e in await backend.fetch("BOB0000001", ids[0], 1)] == [ids[1]]  # after, limit

        # A retry of m1 (same key) stores nothing and answers as the first call did.
        again, _ = await backend.write([BatchIn("ALICE00001", "m1", T0 + 99, 7, _rows(2))], [])
        assert not again[0].created and (again[0].server_ts, again[0].count) == (T0, 3) and again[0].ids == []
        assert len(await backend.fetch("BOB0000001", 0, 100)) == 3

        # Acks delete only the named device's rows: ALICE00002 cannot delete bob's envelope.
        _, deleted = await backend.write([], [("BOB0000001", ids[0]), ("ALICE00002", ids[1])])
        assert deleted == 1
        assert [e.id for e in await backend.fetch("BOB0000001", 0, 100)] == ids[1:]
        assert await backend.fetch("NOBODY0001", 0, 100) == []
    finally:
        await backend.close()
