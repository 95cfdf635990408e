"""The `veil` command, run as a user would in two terminals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ServerProcess


def veil(profile: Path, server: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VEIL_PASSWORD": "correct horse battery", "VEIL_PASSPHRASE": "cli passphrase",
           "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "veil", "--profile", str(profile), "--server", server, *args],
                       capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    if ok:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def test_two_terminals(server: ServerProcess, tmp_path: Path) -> None:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    assert "Registered" in veil(alice, server.url, "register", "alice", "--name", "Alice").stdout
    veil(bob, server.url, "register", "bob")
    veil(alice, server.url, "send", "bob", "hello bob")
    veil(alice, server.url, "send", "bob", "a secret for bob", "--secret")
    veil(bob, server.url, "send", "alice", "secret reply", "--secret")
    lines = veil(bob, server.url, "read", "alice", "--secret", "--json").stdout.splitlines()
    got = [json.loads(line) for line in lines]
    assert [(m["sender"], m["text"]) for m in got] == [("alice", "a secret for bob"), ("bob", "secret reply")]
    assert all(m["secret"] for m in got)
    regular = veil(bob, server.url, "read", "alice").stdout
    assert "hello bob" in regular and "secret" not in regular
    threads = veil(alice, server.url, "threads").stdout
    assert "bob" in threads and "secret" in threads
    devices = veil(alice, server.url, "devices").stdout
    assert "this device" in devices


def test_errors_are_one_clear_line(server: ServerProcess, tmp_path: Path) -> None:
    alice = tmp_path / "alice"
    r = veil(alice, server.url, "read", "bob", ok=False)
    assert r.returncode == 1 and "error:" in r.stderr and "Traceback" not in r.stderr
    veil(alice, server.url, "register", "alice")
    r = veil(alice, server.url, "send", "nobody_here", "hi", "--secret", ok=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = veil(tmp_path / "again", server.url, "register", "alice", ok=False)
    assert r.returncode == 1 and "taken" in r.stderr.lower()
    env = {**os.environ, "VEIL_PASSPHRASE": "not the passphrase"}
    r = subprocess.run([sys.executable, "-m", "veil", "--profile", str(alice), "sync"], capture_output=True,
                       text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "passphrase" in r.stderr and "Traceback" not in r.stderr


def test_media_timer_safety_and_report_commands(server: ServerProcess, tmp_path: Path) -> None:
    from tests.integration.test_media import make_photo

    alice, bob = tmp_path / "alice", tmp_path / "bob"
    veil(alice, server.url, "register", "alice")
    veil(bob, server.url, "register", "bob")
    photo = make_photo(tmp_path / "cat.jpg")
    veil(alice, server.url, "send", "bob", "look", "--secret", "--photo", str(photo))
    veil(alice, server.url, "send", "bob", "--secret", "--sticker", "heart")
    veil(alice, server.url, "timer", "bob", "1m")
    shown = veil(bob, server.url, "read", "alice", "--secret").stdout
    assert "end-to-end encrypted" in shown and "image cat.jpg image/jpeg 320×200" in shown
    assert "sticker veil-basic/heart" in shown and "disappearing messages to 1 minute" in shown
    lines = [json.loads(x) for x in veil(bob, server.url, "read", "alice", "--secret", "--json").stdout.splitlines()]
    photo_id = next(m["id"] for m in lines if m["kind"] == "image")
    veil(bob, server.url, "save", "alice", photo_id, str(tmp_path / "saved.jpg"), "--secret")
    assert (tmp_path / "saved.jpg").read_bytes() == photo.read_bytes()
    a = veil(alice, server.url, "safety", "bob").stdout
    b = veil(bob, server.url, "safety", "alice").stdout
    digits = [line for line in a.splitlines() if line.replace(" ", "").isdigit()]
    assert len(digits) == 3 and all(line in b for line in digits)
    qr = veil(bob, server.url, "safety", "alice", "--payload").stdout.split()[-1]
    assert "verified" in veil(alice, server.url, "verify", "bob", "--scan", qr).stdout
    r = veil(bob, server.url, "report", "alice", "--secret", "--last", "1", "--reason", "spam")
    assert "verified" in r.stdout
    assert "stickers" not in veil(alice, server.url, "stickers").stderr
