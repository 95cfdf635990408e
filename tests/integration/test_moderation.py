"""Abuse reports (franked secret messages, regular ones), blocking and lawful export."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from tests.conftest import ServerProcess
from tests.integration.people import drain, register, texts
from tests.integration.test_media import make_photo
from veil.client.errors import ServerRejected
from veil.protocol.payload import decode_payload, encode_payload


def admin(server: ServerProcess, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "veil", "admin", *args, "--data-dir", str(server.data_dir)],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    return r.stdout


async def test_secret_report_is_verified_and_forgeries_are_rejected(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        await alice.send_text("bob", "an innocent message", secret=True)
        await alice.send_text("bob", "ABUSIVE-MARKER you will regret this", secret=True)
        await alice.send_media("bob", make_photo(tmp_path / "abuse.png", "PNG"), secret=True)
        await drain(bob)
        r = await bob.report("alice", secret=True, last=2, reason="threats")
        assert r["verdict"] == "verified"
        listing = admin(server, "reports")
        assert "ABUSIVE-MARKER" in listing and "an innocent message" not in listing

        # forgeries: bob alters what alice said, or moves a tag to another message
        msgs = [m for m in bob.messages("alice", secret=True) if not m.is_notice]
        opening = msgs[1].franking
        assert opening is not None
        good = {"payload": base64.b64encode(bytes(opening["payload"])).decode(),
                "commitment": base64.b64encode(bytes(opening["commitment"])).decode(),
                "franking_tag": base64.b64encode(bytes(opening["tag"])).decode(),
                "sender": "alice", "sender_device": opening["sender_device"], "recipient": "bob",
                "recipient_device": opening["recipient_device"], "server_ts": int(opening["server_ts"])}
        p = decode_payload(bytes(opening["payload"]))
        altered = encode_payload(msgspec.structs.replace(p, body="something alice never said"))
        other = msgs[0].franking
        assert other is not None
        forged = [
            {**good, "payload": base64.b64encode(altered).decode()},
            {**good, "payload": base64.b64encode(encode_payload(
                msgspec.structs.replace(p, franking_key=bytes(32)))).decode()},
            {**good, "server_ts": good["server_ts"] + 1},
            {**good, "sender_device": "SOMEONEELS"},
            {**good, "franking_tag": base64.b64encode(bytes(other["tag"])).decode()},
        ]
        for item in forged:
            with pytest.raises(ServerRejected) as info:
                await bob.api.call("POST", "/v1/reports", {"peer": "alice", "secret": True, "reason": "x",
                                                           "messages": [item]})
            assert info.value.status == 400 and info.value.code == "report_invalid"
        # a recipient cannot report in someone else's name
        with pytest.raises(ServerRejected):
            await alice.api.call("POST", "/v1/reports", {"peer": "alice", "secret": True, "reason": "x",
                                                         "messages": [good]})
    finally:
        await alice.close()
        await bob.close()


async def test_blocking_and_export(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        await alice.send_text("bob", "regular REGULAR-MARKER", secret=False)
        await alice.send_text("bob", "secret SECRET-MARKER", secret=True)
        await drain(bob)
        await bob.block("alice")
        assert await bob.blocked() == ["alice"]
        await alice.send_text("bob", "while blocked (regular)", secret=False)
        await alice.send_text("bob", "while blocked (secret)", secret=True)
        await drain(bob)
        assert "while blocked (regular)" not in texts(bob.messages("alice", secret=False))
        assert "while blocked (secret)" not in texts(bob.messages("alice", secret=True))
        await bob.unblock("alice")
        await alice.send_text("bob", "after unblocking", secret=True)
        await drain(bob)
        assert texts(bob.messages("alice", secret=True)) == ["secret SECRET-MARKER", "after unblocking"]

        out = tmp_path / "alice-export.json"
        admin(server, "export", "alice", "--out", str(out))
        raw = out.read_text()
        data = json.loads(raw)
        assert "REGULAR-MARKER" in raw
        assert "SECRET-MARKER" not in raw and "while blocked (secret)" not in raw
        assert data and isinstance(data, dict)
    finally:
        await alice.close()
        await bob.close()
