"""`python -m veil.server --port N --data-dir D [--db URL] [--envelope-max-age S] [--max-blob-size B]
[--word-list FILE] [--redis URL] [--redis-prefix P] [--recheck-interval S] [--workers N]
[--log-format text|json]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from veil.server.config import ServerConfig, normalise_db_url
from veil.server.run import serve


def parse_args(argv: list[str] | None = None, prog: str = "python -m veil.server") -> ServerConfig:
    """The server's options, declared here only (`veil serve` passes its arguments through)."""
    p = argparse.ArgumentParser(prog=prog, description="Run the Veil server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8800)
    p.add_argument("--data-dir", type=Path, default=Path("veil-data"))
    p.add_argument("--db", default=None, help="sqlite:///path or postgresql://user@host/db "
                                              "(default: SQLite in the data dir)")
    p.add_argument("--envelope-max-age", type=int, default=30 * 24 * 3600, metavar="SECONDS",
                   help="undelivered envelopes older than this are purged (default 30 days)")
    p.add_argument("--metadata-max-age", type=int, default=90 * 24 * 3600, metavar="SECONDS",
                   help="the metadata log of secret envelopes (who sent to whom, when, how large; "
                        "for moderation and lawful export) keeps rows this long; 0 keeps them "
                        "forever (default 90 days)")
    p.add_argument("--max-body", type=int, default=1024 * 1024, metavar="BYTES")
    p.add_argument("--login-failures", type=int, default=5, help="failed logins per minute per "
                                                                 "handle and per address")
    p.add_argument("--log-file", type=Path, default=None)
    p.add_argument("--max-blob-size", type=int, default=100 * 1024 * 1024, metavar="BYTES",
                   help="largest attachment blob accepted (default 100 MiB)")
    p.add_argument("--word-list", type=Path, default=None, metavar="FILE",
                   help="flag regular messages containing any of these words (one per line)")
    p.add_argument("--redis", default=None, metavar="URL",
                   help="redis://host:port/db: wake streams across nodes (several servers on one PostgreSQL)")
    p.add_argument("--redis-prefix", default="veil", metavar="PREFIX",
                   help="Redis channel prefix (several deployments on one Redis)")
    p.add_argument("--recheck-interval", type=float, default=1.5, metavar="SECONDS",
                   help="multi-node: each stream re-reads its mailbox this often (jittered)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on one port (PostgreSQL only)")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    # Password hashing cost (Argon2id); lowered only by tests and benchmarks.
    p.add_argument("--argon2-time-cost", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--argon2-memory-kib", type=int, default=65536, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.word_list is not None and not a.word_list.is_file():
        p.error(f"--word-list: no such file: {a.word_list}")
    if a.db:
        try:
            normalise_db_url(a.db)
        except ValueError as exc:
            p.error(str(exc))
    try:
        return ServerConfig(host=a.host, port=a.port, data_dir=a.data_dir, db_url=a.db,
                            envelope_max_age=a.envelope_max_age, metadata_max_age=a.metadata_max_age,
                            max_body=a.max_body,
                            login_failures_per_handle=a.login_failures,
                            login_failures_per_address=a.login_failures,
                            log_file=a.log_file, max_blob_size=a.max_blob_size, word_list=a.word_list,
                            redis_url=a.redis, redis_prefix=a.redis_prefix, recheck_interval=a.recheck_interval,
                            workers=a.workers, log_format=a.log_format, argon2_time_cost=a.argon2_time_cost,
                            argon2_memory_kib=a.argon2_memory_kib)
    except ValueError as exc:
        p.error(str(exc))


def main(argv: list[str] | None = None) -> None:
    serve(parse_args(argv))


if __name__ == "__main__":
    main()
