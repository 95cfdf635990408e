"""`veil demo`: a server on embedded defaults and two people, alice and bob, each with an app.

Everything lives under one folder (default ./veil-demo):

    server/        the server's SQLite database, blobs and log (a `python -m veil.server` child)
    alice/, bob/   the two device profiles
    demo.json      the fixed demo password and store passphrase (this is a demo, not a secret)

The first run registers both accounts and sends one regular message so both inboxes show a
conversation; later runs reopen the same devices. `--reset` deletes the folder first.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from veil.client.device import Device
from veil.client.store import Store
from veil.web.server import AppSpec, RunningApp, serve_apps

__all__ = ["DEMO_PASSPHRASE", "DEMO_PASSWORD", "run_demo"]

DEMO_PASSWORD = "veil demo password"
DEMO_PASSPHRASE = "veil demo passphrase"
PEOPLE = ("alice", "bob")


def _secrets(folder: Path) -> dict[str, str]:
    path = folder / "demo.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    data = {"password": DEMO_PASSWORD, "passphrase": DEMO_PASSPHRASE}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data


def start_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """The server as a child process (its own event loop and log), waited for until healthy."""
    data = folder / "server"
    data.mkdir(parents=True, exist_ok=True)
    out = (data / "process-output.txt").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "veil.server", "--host", "127.0.0.1", "--port", str(port),
                             "--data-dir", str(data)], stdout=out, stderr=subprocess.STDOUT)
    out.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited; see {data / 'process-output.txt'}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the server did not start on port {port}; see {data / 'process-output.txt'}")


async def _first_run(folder: Path, server: str, creds: dict[str, str]) -> None:
    made: list[Device] = []
    try:
        for handle in PEOPLE:
            if not Store.exists(folder / handle):
                print(f"registering {handle}…", flush=True)
                made.append(await Device.register(folder / handle, server, handle, creds["password"],
                                                  creds["passphrase"], display_name=handle.title(),
                                                  device_name="demo app"))
        if len(made) == len(PEOPLE):
            await made[0].send_text("bob", "Hi Bob! This is a regular chat. Tap my name to go secret.")
    finally:
        for d in made:
            await d.close()


def _announce(apps: list[RunningApp]) -> None:
    print("\nVeil demo is running. Open each link in its own tab (Ctrl-C stops everything):\n", flush=True)
    for a in apps:
        print(f"  {a.spec.label:<6} {a.url}", flush=True)
    print(flush=True)


def run_demo(folder: Path, *, port: int = 8800, reset: bool = False) -> None:
    """Run until Ctrl-C: server on `port`, alice's app on port+1, bob's on port+2."""
    if reset and folder.exists():
        shutil.rmtree(folder)
        print(f"cleared {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    creds = _secrets(folder)
    proc = start_server(folder, port)
    server = f"http://127.0.0.1:{port}"
    print(f"server: {server} (data in {folder / 'server'})", flush=True)
    try:
        asyncio.run(_first_run(folder, server, creds))
        specs = [AppSpec(profile=folder / h, port=port + 1 + i, server=server, server_given=True,
                         passphrase=creds["passphrase"], label=h) for i, h in enumerate(PEOPLE)]
        asyncio.run(serve_apps(specs, announce=_announce))
    except KeyboardInterrupt:
        pass
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print("stopped.")
