"""Benchmark 6: the delivery workload against Matrix Synapse (PyPI, own venv, SQLite, rate limits
lifted, loopback only), in the same run as Veil's, with Veil/Synapse ratios.

Synapse workload: K sender/receiver user pairs, one private room each; senders PUT opaque
~200-byte m.room.encrypted events, receivers long-poll /sync and count them.

    python bench/synapse.py [--seconds 3] [--k 4] [--venv /tmp/veil-synapse-venv]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import yaml

from bench.common import free_port, pct, record
from bench.delivery import run as veil_run

RATE_LIMITS = ["rc_message", "rc_registration", "rc_room_creation", "rc_admin_redaction", "rc_3pid_validation",
               "rc_joins_per_room", "rc_delayed_event_mgmt"]
FREE = {"per_second": 100000, "burst_count": 1000000}


def install(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(py), "-c", "import synapse"], capture_output=True).returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "matrix-synapse"], check=True)
    return py


def configure(py: Path, d: Path, port: int) -> Path:
    cfg = d / "homeserver.yaml"
    subprocess.run([str(py), "-m", "synapse.app.homeserver", "--server-name", "localhost", "--config-path", str(cfg),
                    "--data-directory", str(d), "--generate-config", "--report-stats=no"], check=True, cwd=d,
                   capture_output=True)
    c = yaml.safe_load(cfg.read_text())
    c["listeners"] = [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                       "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}]
    c.update({"trusted_key_servers": [], "suppress_key_server_warning": True, "federation_domain_whitelist": [],
              "enable_registration": True, "enable_registration_without_verification": True,
              "presence": {"enabled": False}})
    for k in RATE_LIMITS:
        c[k] = FREE
    c["rc_login"] = {"address": FREE, "account": FREE, "failed_attempts": FREE}
    c["rc_joins"] = {"local": FREE, "remote": FREE}
    c["rc_invites"] = {"per_room": FREE, "per_user": FREE, "per_issuer": FREE}
    c["rc_presence"] = {"per_user": FREE}
    cfg.write_text(yaml.safe_dump(c))
    return cfg


async def register(http: httpx.AsyncClient, user: str) -> str:
    body: dict[str, object] = {"username": user, "password": "benchpass123", "inhibit_login": False}
    r = await http.post("/_matrix/client/v3/register", json=body)
    if r.status_code == 401:
        body["auth"] = {"type": "m.login.dummy", "session": r.json()["session"]}
        r = await http.post("/_matrix/client/v3/register", json=body)
    r.raise_for_status()
    return str(r.json()["access_token"])


async def workload(base: str, k: int, seconds: float, rate: int = 0) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=8 * k)) as http:
        tag = uuid.uuid4().hex[:6]
        pairs = []
        for i in range(k):
            st, rt = await register(http, f"s{tag}{i}"), await register(http, f"r{tag}{i}")
            sh, rh = {"Authorization": f"Bearer {st}"}, {"Authorization": f"Bearer {rt}"}
            room = (await http.post("/_matrix/client/v3/createRoom", headers=sh,
                                    json={"preset": "private_chat", "invite": [f"@r{tag}{i}:localhost"]})
                    ).json()["room_id"]
            (await http.post(f"/_matrix/client/v3/join/{room}", headers=rh, json={})).raise_for_status()
            pairs.append((sh, rh, room))
        lat: list[float] = []
        got = 0
        sent = 0
        stop = False
        flt = '{"presence":{"types":[]},"account_data":{"types":[]}}'

        async def receiver(rh: dict[str, str]) -> None:
            nonlocal got
            r = await http.get("/_matrix/client/v3/sync", headers=rh, params={"filter": flt, "timeout": 0})
            since = r.json()["next_batch"]
            while not stop or got < sent:
                r = await http.get("/_matrix/client/v3/sync", headers=rh,
                                   params={"filter": flt, "timeout": 1000, "since": since})
                j = r.json()
                since = j["next_batch"]
                now = time.perf_counter()
                for room in j.get("rooms", {}).get("join", {}).values():
                    for ev in room.get("timeline", {}).get("events", []):
                        if ev.get("type") == "m.room.encrypted":
                            got += 1
                            lat.append((now - float(ev["content"]["sent"])) * 1000)
                if stop and time.perf_counter() > stop_wait:
                    return

        async def post(sh: dict[str, str], room: str) -> None:
            nonlocal sent
            content = {"algorithm": "m.olm.v1.curve25519-aes-sha2", "sent": str(time.perf_counter()),
                       "ciphertext": "x" * 160}
            r = await http.put(f"/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/{uuid.uuid4().hex}",
                               headers=sh, json=content)
            if r.status_code == 200:
                sent += 1

        stop_wait = float("inf")
        recv = [asyncio.create_task(receiver(rh)) for _, rh, _ in pairs]
        start = time.perf_counter()
        end = start + seconds
        if rate == 0:
            async def lane(i: int) -> None:
                while time.perf_counter() < end:
                    await post(pairs[i][0], pairs[i][2])
            await asyncio.gather(*(lane(i % k) for i in range(4 * k)))
        else:
            tasks: set[asyncio.Task[None]] = set()
            n = 0
            while (now := time.perf_counter()) < end:
                while n < int((now - start) * rate):
                    t = asyncio.create_task(post(pairs[n % k][0], pairs[n % k][2]))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
                    n += 1
                await asyncio.sleep(0.001)
            await asyncio.gather(*tasks)
        stop, stop_wait = True, time.perf_counter() + 15
        await asyncio.gather(*recv)
        done = time.perf_counter() - start
        return {"rate": got / done, "sent": sent, "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99)}


async def run(venv: Path, seconds: float, k: int, rates: list[int]) -> None:
    py = install(venv)
    veil = await veil_run(["sqlite"], seconds, k, rates)
    lines = []
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        cfg = configure(py, Path(d), port)
        log = (Path(d) / "out.txt").open("wb")
        proc = subprocess.Popen([str(py), "-m", "synapse.app.homeserver", "-c", str(cfg)], cwd=d, stdout=log,  # noqa: ASYNC220
                                stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as probe:
                for _ in range(300):
                    try:
                        if (await probe.get(base + "/_matrix/client/versions")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
            t = await workload(base, k, seconds)
            v = veil["sqlite/throughput"]["rate"]
            lines.append(f"Synapse throughput [SQLite, K={k}]: {t['rate']:.0f} msg/s; Veil {v:.0f} msg/s; "
                         f"Veil/Synapse {v / max(t['rate'], 1e-9):.1f}x")
            for rate in rates:
                s = await workload(base, k, seconds, rate)
                vl = veil[f"sqlite/latency{rate}"]
                lines.append(f"Synapse latency offered {rate}/s: p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms, "
                             f"p99 {s['p99']:.1f} ms ({s['rate']:.0f}/s delivered); Veil p99 {vl['p99']:.1f} ms; "
                             f"Synapse/Veil p99 {s['p99'] / max(vl['p99'], 1e-9):.1f}x")
        finally:
            proc.terminate()
            proc.wait(20)
    record("Matrix Synapse side by side (benchmark 6)", lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--rates", default="100")
    p.add_argument("--venv", type=Path, default=Path("/tmp/veil-synapse-venv"))
    a = p.parse_args()
    asyncio.run(run(a.venv, a.seconds, a.k, [int(x) for x in a.rates.split(",")]))


if __name__ == "__main__":
    main()
