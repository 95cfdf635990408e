"""`python -m veil.server --port N --data-dir D [--db URL] [--envelope-max-age S] [--max-blob-size B]
[--word-list FILE]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from veil.server.config import ServerConfig, normalise_db_url
from veil.server.run import serve


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    p = argparse.ArgumentParser(prog="python -m veil.server", description="Run the Veil server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8800)
    p.add_argument("--data-dir", type=Path, default=Path("veil-data"))
    p.add_argument("--db", default=None, help="sqlite:///path or postgresql://user@host/db "
                                              "(default: SQLite in the data dir)")
    p.add_argument("--envelope-max-age", type=int, default=30 * 24 * 3600, metavar="SECONDS")
    p.add_argument("--max-body", type=int, default=1024 * 1024, metavar="BYTES")
    p.add_argument("--login-failures", type=int, default=5, help="failed logins per minute per "
                                                                 "handle and per address")
    p.add_argument("--log-file", type=Path, default=None)
    p.add_argument("--max-blob-size", type=int, default=100 * 1024 * 1024, metavar="BYTES",
                   help="largest attachment blob accepted (default 100 MiB)")
    p.add_argument("--word-list", type=Path, default=None, metavar="FILE",
                   help="flag regular messages containing any of these words (one per line)")
    a = p.parse_args(argv)
    if a.word_list is not None and not a.word_list.is_file():
        p.error(f"--word-list: no such file: {a.word_list}")
    if a.db:
        try:
            normalise_db_url(a.db)
        except ValueError as exc:
            p.error(str(exc))
    return ServerConfig(host=a.host, port=a.port, data_dir=a.data_dir, db_url=a.db,
                        envelope_max_age=a.envelope_max_age, max_body=a.max_body,
                        login_failures_per_handle=a.login_failures,
                        login_failures_per_address=a.login_failures,
                        log_file=a.log_file, max_blob_size=a.max_blob_size, word_list=a.word_list)


def main(argv: list[str] | None = None) -> None:
    serve(parse_args(argv))


if __name__ == "__main__":
    main()
