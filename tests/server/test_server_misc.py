"""Configuration, command line, the catch-all error handler, purging, and what the log may hold."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server.api_fixtures import Api, make_config, running_app
from tests.server.server_helpers import FakeClock
from veil.server.__main__ import parse_args
from veil.server.app import build_app
from veil.server.config import ServerConfig, normalise_db_url, redact_db_url


def test_db_urls_are_normalised_and_redacted(tmp_path: Path) -> None:
    assert normalise_db_url("postgresql://u:pw@h/db") == "postgresql+asyncpg://u:pw@h/db"
    assert normalise_db_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_db_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert normalise_db_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    with pytest.raises(ValueError):
        normalise_db_url("mysql://h/db")
    assert redact_db_url("postgresql+asyncpg://u:secret@h:5432/db") == "postgresql+asyncpg://u:***@h:5432/db"
    assert redact_db_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    cfg = ServerConfig(data_dir=tmp_path)
    assert cfg.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'veil.db'}"
    assert cfg.log_path == tmp_path / "veil-server.log"


def test_command_line(tmp_path: Path) -> None:
    cfg = parse_args(["--port", "9001", "--data-dir", str(tmp_path), "--db", "postgresql://p@h/d",
                      "--envelope-max-age", "60"])
    assert (cfg.port, cfg.data_dir, cfg.envelope_max_age) == (9001, tmp_path, 60)
    assert cfg.database_url == "postgresql+asyncpg://p@h/d"
    assert (cfg.max_blob_size, cfg.word_list) == (100 * 1024 * 1024, None)
    assert cfg.blob_dir == tmp_path / "blobs"
    words = tmp_path / "words.txt"
    words.write_text("spam\n")
    cfg = parse_args(["--max-blob-size", "1000", "--word-list", str(words)])
    assert (cfg.max_blob_size, cfg.word_list) == (1000, words)
    with pytest.raises(SystemExit):
        parse_args(["--db", "oracle://x"])
    with pytest.raises(SystemExit):
        parse_args(["--word-list", str(tmp_path / "missing.txt")])
    assert parse_args([]).metadata_max_age == 90 * 24 * 3600
    assert parse_args(["--metadata-max-age", "0"]).metadata_max_age == 0


def test_veil_serve_takes_the_same_options(tmp_path: Path) -> None:
    """`veil serve` passes its arguments to the one parser (veil.server.__main__)."""
    r = subprocess.run([sys.executable, "-m", "veil", "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--metadata-max-age" in r.stdout and "--recheck-interval" in r.stdout
    r = subprocess.run([sys.executable, "-m", "veil", "serve", "--port", "nine"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "veil serve: error: argument --port" in r.stderr


async def test_unexpected_errors_say_nothing(tmp_path: Path) -> None:
    app = build_app(make_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"), clock=FakeClock())

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail: /secret/path token=abc")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                   base_url="http://t") as c:
        r = await c.get("/v1/boom")
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal", "message": "the server failed; try again later"}}


async def test_old_envelopes_are_purged(tmp_path: Path, fresh_db: str) -> None:
    clock = FakeClock()
    async with running_app(make_config(tmp_path, fresh_db, envelope_max_age=60, metadata_max_age=45),
                           clock) as client:
        app = client._transport.app  # type: ignore[attr-defined]
        api = Api(client, clock)
        alice, bob = await api.person("alice"), await api.person("bob")
        for cmid in ("old", "new"):
            r = await client.post("/v1/messages", headers=alice.auth(), json={
                "client_message_id": cmid, "recipient": "bob", "skipped": [],
                "envelopes": [{"handle": "bob", "device_id": bob.device_id(), "olm_type": 1,
                               "body": "AAAA"}]})
            assert r.status_code == 200
            clock.advance(30_001)
        assert len(await app.state.store.envelope_log_of("bob")) == 2
        assert await app.state.mailbox.purge() == 1
        left = (await client.get("/v1/messages", headers=bob.auth())).json()["envelopes"]
        assert [e["client_message_id"] for e in left] == ["new"]
        # The metadata log keeps its own age (45 s here): only the newer row (30 s old) is left.
        [kept] = await app.state.store.envelope_log_of("bob")
        assert kept.server_ts == clock.now_ms() - 30_001


async def test_log_holds_no_secrets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    async with running_app(make_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"), clock) as client:
        api = Api(client, clock)
        alice, bob = await api.person("alice"), await api.person("bob")
        await client.post("/v1/threads/bob/messages", headers=alice.auth(),
                          json={"client_message_id": "c", "text": "REGULAR-TEXT-MARKER"})
        await client.post("/v1/messages", headers=alice.auth(), json={
            "client_message_id": "m", "recipient": "bob", "skipped": [],
            "envelopes": [{"handle": "bob", "device_id": bob.device_id(), "olm_type": 1,
                           "body": "Q0lQSEVSVEVYVE1BUktFUg"}]})
        keys = alice.devices[0][2]
        await client.post("/v1/devices", json={"handle": "alice", "password": "WRONG-PASSWORD-MARKER",
                                               "device_name": "x", "curve25519": keys.curve25519,
                                               "ed25519": keys.ed25519})
    # Our loggers at every level (third-party debug logs are not enabled by setup_logging).
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("veil", "uvicorn")))
    assert "alice" in text  # handles are fine
    for secret in ("REGULAR-TEXT-MARKER", "Q0lQSEVSVEVYVE1BUktFUg", "WRONG-PASSWORD-MARKER", alice.password,
                   alice.devices[0][1], bob.devices[0][1], alice.identity.public_b64,
                   alice.devices[0][2].curve25519):
        assert secret not in text
