"""Shared bench helpers: server processes, machine description, RESULTS.md, raw clients."""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import resource
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from veil.protocol.encoding import b64encode

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PG_ADMIN = os.environ.get("VEIL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("VEIL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
FAST_HASH = ("--argon2-time-cost", "1", "--argon2-memory-kib", "1024")
PASSWORD = "password1"


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    return f"{platform.uname().system} {platform.uname().release}, {cpu}, {os.cpu_count()} cores, git {rev}"


def record(title: str, lines: list[str]) -> None:
    """Print the figures and append them to bench/RESULTS.md."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = [f"### {title} — {stamp}", "", f"Machine: {machine()}", "", *[f"- {x}" for x in lines], ""]
    print("\n".join(block), flush=True)
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(block) + "\n")


async def pg_database() -> str:
    import asyncpg

    name = f"veil_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def drop_pg_database(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Node:
    url: str
    proc: subprocess.Popen[bytes]

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_node(data_dir: Path, *args: str) -> Node:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    out = (data_dir / "out.txt").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "veil.server", "--port", str(port), "--data-dir", str(data_dir),
                             *FAST_HASH, *args], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return Node(url, proc)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


@dataclass
class Dev:
    handle: str
    device_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def person(http: httpx.AsyncClient, handle: str) -> Dev:
    from veil.protocol.devicelist import DeviceEntry, sign_device_list
    from veil.protocol.keys import IdentityKeyPair

    identity = IdentityKeyPair.generate()
    r = await http.post("/v1/accounts", json={"handle": handle, "display_name": handle, "password": PASSWORD,
                                              "identity_key": identity.public_b64})
    assert r.status_code == 201, r.text
    dev, signing = await add_device(http, handle)
    dl = sign_device_list(identity, handle, 1, [DeviceEntry(device_id=dev.device_id, curve25519=signing[0],
                                                            ed25519=signing[1])])
    body = {"handle": dl.handle, "version": dl.version, "signature": dl.signature,
            "devices": [{"device_id": e.device_id, "curve25519": e.curve25519, "ed25519": e.ed25519}
                        for e in dl.devices]}
    r = await http.put("/v1/devicelist", headers=dev.headers, json=body)
    assert r.status_code == 200, r.text
    return dev


async def add_device(http: httpx.AsyncClient, handle: str) -> tuple[Dev, tuple[str, str]]:
    from veil.protocol.keys import IdentityKeyPair

    curve = b64encode(os.urandom(32))
    ed = IdentityKeyPair.generate().public_b64
    r = await http.post("/v1/devices", json={"handle": handle, "password": PASSWORD, "device_name": "b",
                                             "curve25519": curve, "ed25519": ed})
    assert r.status_code == 201, r.text
    return Dev(handle, r.json()["device_id"], r.json()["token"]), (curve, ed)


def send_json(to: Dev, body: bytes) -> dict[str, object]:
    return {"client_message_id": secrets.token_hex(8), "recipient": to.handle, "skipped": [],
            "envelopes": [{"handle": to.handle, "device_id": to.device_id, "olm_type": 1,
                           "body": b64encode(body)}]}


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/stream"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


async def gather_limited(n: int, coros: list[object]) -> list[object]:
    sem = asyncio.Semaphore(n)

    async def one(c: object) -> object:
        async with sem:
            return await c  # type: ignore[misc]

    return list(await asyncio.gather(*(one(c) for c in coros)))
