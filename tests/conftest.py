"""Shared fixtures: real server processes on free ports, fresh PostgreSQL databases."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

PG_URL = os.environ.get("VEIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_available() -> bool:
    try:
        asyncio.run(_pg_admin("SELECT 1"))
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator[list[str]]:
    """Yields a list that `make_pg_database` fills; every database in it is dropped at the end."""
    made: list[str] = []
    yield made
    for name in made:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_pg_database(made: list[str]) -> str:
    """Create a fresh PostgreSQL database and return its URL (skip only outside CI)."""
    if not _pg_available():
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_URL}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    name = f"veil_it_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    made.append(name)
    return PG_URL.rsplit("/", 1)[0] + "/" + name


@dataclass
class ServerProcess:
    url: str
    data_dir: Path
    db_url: str | None
    proc: subprocess.Popen[bytes]
    output: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "veil.db"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_bytes(self) -> bytes:
        data = b""
        for p in self.data_dir.rglob("*.log"):
            data += p.read_bytes()
        return data + self.output.read_bytes()


def start_server(data_dir: Path, db_url: str | None = None, *args: str) -> ServerProcess:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    output = data_dir / "process-output.txt"
    cmd = [sys.executable, "-m", "veil.server", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data_dir), *args]
    if db_url:
        cmd += ["--db", db_url]
    with output.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {output.read_text(errors='replace')}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return ServerProcess(url=url, data_dir=data_dir, db_url=db_url, proc=proc, output=output)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {output.read_text(errors='replace')}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server process on SQLite."""
    s = start_server(tmp_path / "server")
    yield s
    s.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def any_server(request: pytest.FixtureRequest, tmp_path: Path,
               pg_database_factory: list[str]) -> Iterator[ServerProcess]:
    """A real server process on SQLite, then on a fresh PostgreSQL database."""
    db_url = make_pg_database(pg_database_factory) if request.param == "postgres" else None
    s = start_server(tmp_path / "server", db_url)
    yield s
    s.stop()
