"""Server settings: one frozen value built once (from the command line or a test) and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServerConfig", "normalise_db_url", "redact_db_url"]

DAY_S = 24 * 3600
MIB = 1024 * 1024


def normalise_db_url(url: str) -> str:
    """Turn plain `postgresql://` / `sqlite:///` URLs into their async-driver forms."""
    for plain, async_form in (
        ("postgresql+asyncpg://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite+aiosqlite://", "sqlite+aiosqlite://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_form + url[len(plain):]
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r} "
                     "(use sqlite:///path or postgresql://user@host/db)")


def redact_db_url(url: str) -> str:
    """The URL with any password replaced, safe to print and log."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8800
    data_dir: Path = field(default_factory=lambda: Path("veil-data"))
    db_url: str | None = None
    envelope_max_age: int = 30 * DAY_S  # seconds an unacknowledged envelope is kept
    metadata_max_age: int = 90 * DAY_S  # seconds an envelope_log row is kept; 0: forever
    purge_interval: float = 3600.0  # seconds between purge runs
    max_body: int = 1024 * 1024  # bytes per request body
    login_failures_per_handle: int = 5
    login_failures_per_address: int = 5
    login_window: int = 60  # seconds
    # Argon2id cost; tests lower it, production keeps argon2-cffi's defaults.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    log_file: Path | None = None
    max_blob_size: int = 100 * MIB  # bytes per uploaded blob (POST /v1/blobs has its own limit)
    word_list: Path | None = None  # one word per line; regular messages matching one are flagged
    # Multi-node: wake-ups cross nodes over Redis pub/sub; the database stays the source of truth.
    redis_url: str | None = None
    redis_prefix: str = "veil"  # channel name prefix (several deployments or test runs on one Redis)
    recheck_interval: float = 1.5  # seconds (jittered) between mailbox re-checks of each stream, multi-node
    workers: int = 1  # uvicorn worker processes on one port (PostgreSQL needed beyond one)
    log_format: str = "text"  # "text" or "json" (JSON lines)
    migrate: bool = True  # run migrations at start (with --workers the parent does it once)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.workers > 1 and not self.database_url.startswith("postgresql"):
            raise ValueError("--workers > 1 needs PostgreSQL (--db postgresql://...): SQLite serves one process")
        if self.log_format not in ("text", "json"):
            raise ValueError("--log-format is text or json")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("--redis takes a redis://host:port/db URL")
        if self.recheck_interval <= 0:
            raise ValueError("--recheck-interval must be positive")

    @property
    def database_url(self) -> str:
        """The async SQLAlchemy URL actually used."""
        if self.db_url:
            return normalise_db_url(self.db_url)
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'veil.db'}"

    @property
    def multi_node(self) -> bool:
        """Streams may be woken from elsewhere (Redis or sibling workers): they re-check on a timer."""
        return self.redis_url is not None or self.workers > 1

    @property
    def blob_dir(self) -> Path:
        """Where blob bytes live: `<data_dir>/blobs/`."""
        return self.data_dir / "blobs"

    @property
    def log_path(self) -> Path:
        return self.log_file if self.log_file is not None else self.data_dir / "veil-server.log"
