"""`veil.server.admin` and the `veil admin` sub-app: reports listing and account export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner, Result

from tests.server.api_fixtures import Api, make_config, running_app
from tests.server.feature_helpers import payload, received, send_franked, targets
from tests.server.server_helpers import FakeClock
from veil.cli.admin import admin_app
from veil.protocol.encoding import b64encode
from veil.server.admin import UnknownAccount, export_account, reports_overview
from veil.server.storage.sql import SqlStore


async def populate(tmp_path: Path, db_url: str) -> dict[str, str]:
    """Two people, a regular thread (one message flagged), a secret message and a report."""
    words = tmp_path / "words.txt"
    words.write_text("scam\n", encoding="utf-8")
    clock = FakeClock()
    async with running_app(make_config(tmp_path, db_url, word_list=words), clock) as client:
        api = Api(client, clock)
        alice, bob = await api.person("alice"), await api.person("bob")
        await client.post("/v1/threads/bob/messages", headers=alice.auth(),
                          json={"client_message_id": "r1", "text": "REGULAR-HELLO"})
        await client.post("/v1/threads/alice/messages", headers=bob.auth(),
                          json={"client_message_id": "r2", "text": "total scam offer"})
        p = payload(alice, "bob", "SECRET-THREAT")
        data = await send_franked(client, alice, "bob", targets((bob, [0])), p, "s1")
        f = await received(client, bob, 0, data)
        r = await client.post("/v1/reports", headers=bob.auth(), json={
            "peer": "alice", "secret": True, "reason": "REASON-THREAT", "messages": [f.report_json()]})
        assert r.status_code == 201, r.text
        # A second secret message that nobody reports: only its metadata may be exported.
        p2 = payload(alice, "bob", "SECRET-UNREPORTED")
        data2 = await send_franked(client, alice, "bob", targets((bob, [0])), p2, "s2")
        return {"report_id": str(r.json()["report_id"]), "ciphertext": b64encode(b"olm:" + data2[:8]),
                "franking_key": b64encode(p2.franking_key), "device": alice.device_id(),
                "curve": alice.devices[0][2].curve25519}


async def test_overview_and_export(tmp_path: Path, fresh_db: str) -> None:
    facts = await populate(tmp_path, fresh_db)
    store = SqlStore(fresh_db)
    try:
        overview = await reports_overview(store)
        [rep] = overview["reports"]
        assert (rep["report_id"], rep["reporter"], rep["peer"], rep["kind"], rep["verdict"], rep["reason"]) == (
            facts["report_id"], "bob", "alice", "secret", "verified", "REASON-THREAT")
        assert rep["content"][0]["text"] == "SECRET-THREAT"
        assert [m["text"] for m in overview["flagged"]] == ["total scam offer"]
        export = await export_account(store, "alice", now=1)
        try:
            await export_account(store, "nobody", now=1)
            raise AssertionError("expected UnknownAccount")
        except UnknownAccount:
            pass
    finally:
        await store.close()
    assert export["profile"]["handle"] == "alice"
    assert [d["device_id"] for d in export["devices"]] == [facts["device"]]
    [thread] = export["regular_threads"]
    assert thread["peer"] == "bob"
    assert [m["text"] for m in thread["messages"]] == ["REGULAR-HELLO", "total scam offer"]
    [secret] = export["secret_threads"]
    assert secret["peer"] == "bob" and len(secret["envelopes"]) == 2
    assert {e["direction"] for e in secret["envelopes"]} == {"sent"}
    assert all(e["size"] > 0 and e["time"] > 0 for e in secret["envelopes"])
    text = json.dumps(export)
    for forbidden in ("SECRET-UNREPORTED", facts["ciphertext"], facts["franking_key"], facts["curve"],
                      "token_hash", "password_hash", "identity_key", "commitment", "franking_tag"):
        assert forbidden not in text


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(admin_app, list(args))


async def test_admin_cli_prints_reports_and_exports(tmp_path: Path, fresh_db: str) -> None:
    facts = await populate(tmp_path, fresh_db)
    where = ["--data-dir", str(tmp_path)] if fresh_db.startswith("sqlite") else ["--db", fresh_db]
    result = await asyncio.to_thread(run_cli, "reports", *where)
    assert result.exit_code == 0, result.output
    for expected in (facts["report_id"], "SECRET-THREAT", "REASON-THREAT", "total scam offer", "verified"):
        assert expected in result.output
    result = await asyncio.to_thread(run_cli, "reports", "--json", "--db", fresh_db)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reports"][0]["report_id"] == facts["report_id"]
    out = tmp_path / "alice.json"
    result = await asyncio.to_thread(run_cli, "export", "alice", "--out", str(out), *where)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["profile"]["handle"] == "alice"
    result = await asyncio.to_thread(run_cli, "export", "nobody", "--out", str(out), "--db", fresh_db)
    assert result.exit_code == 1
    result = await asyncio.to_thread(run_cli, "reports", "--data-dir", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "no Veil database" in result.output
