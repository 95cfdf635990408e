"""Fixtures for the web app tests: Debian's Chromium through Playwright, and `veil app` processes.

Playwright never downloads a browser here: it drives /usr/bin/chromium (`scripts/ensure_chromium`
installs it from Debian's packages in CI). Outside CI the browser tests skip without it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "web"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

@dataclass
class AppProcess:
    """One `veil app` process: its launch URL (with the key), its port and its output file."""

    proc: subprocess.Popen[bytes]
    url: str
    port: int
    output: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_app(profile: Path, server_url: str, *, passphrase: str | None) -> AppProcess:
    """Start `veil app` on a free port and wait (at most 60 s) for the launch URL it prints."""
    port = free_port()
    output = profile.parent / f"{profile.name}-app-output.txt"
    env = {k: v for k, v in os.environ.items() if k != "VEIL_PASSPHRASE"}
    if passphrase is not None:
        env["VEIL_PASSPHRASE"] = passphrase
    cmd = [sys.executable, "-m", "veil", "app", "--profile", str(profile), "--port", str(port),
           "--server", server_url]
    with output.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        found = re.search(r"http://127\.0\.0\.1:\d+/\?key=[A-Za-z0-9_-]+", text)
        if found:
            return AppProcess(proc=proc, url=found.group(0), port=port, output=output)
        if proc.poll() is not None:
            raise RuntimeError(f"veil app exited: {text}")
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"veil app printed no URL: {output.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium per module (module scope keeps Playwright's loop away from async tests)."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("CI needs /usr/bin/chromium (scripts/ensure_chromium installs it)")
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
