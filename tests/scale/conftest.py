"""Fixtures for the scale and fault tests: real server processes on one fresh PostgreSQL database,
Redis (VEIL_TEST_REDIS_URL, a random channel prefix per run) or a private redis-server the test
can kill. Outside CI an unreachable PostgreSQL or Redis skips; with CI=true it fails."""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ServerProcess, free_port, make_pg_database, start_server

REDIS_URL = os.environ.get("VEIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FAST_HASH = ("--argon2-time-cost", "1", "--argon2-memory-kib", "1024")


def _unavailable(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI but unavailable")
    pytest.skip(f"{what} unavailable")


def _redis_ping(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session", autouse=True)
def _more_fds() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 16384):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))


@pytest.fixture
def redis_env() -> Iterator[tuple[str, str]]:
    """(url, prefix): the shared test Redis and a prefix no other run uses; its keys removed after."""
    if not _redis_ping(REDIS_URL):
        _unavailable(f"Redis at {REDIS_URL}")
    prefix = f"veiltest-{secrets.token_hex(4)}"
    yield REDIS_URL, prefix
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class OwnRedis:
    """A private redis-server on a free port that the test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            _unavailable("redis-server")
        self.exe = str(exe)
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    r = OwnRedis(tmp_path / "redis")
    r.start()
    yield r
    r.kill()


@pytest.fixture
def pg_db(pg_database_factory: list[str]) -> str:
    return make_pg_database(pg_database_factory)


class Nodes:
    """Server processes started by a test, all stopped at its end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[ServerProcess] = []

    def start(self, db_url: str, *args: str) -> ServerProcess:
        node = start_server(self.tmp_path / f"node{len(self.started)}", db_url, *FAST_HASH, *args)
        self.started.append(node)
        return node

    def stop_all(self) -> None:
        for n in self.started:
            n.stop()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(tmp_path)
    yield n
    n.stop_all()
