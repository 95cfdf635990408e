"""WAL checkpoints for the SQLite group writer, off the commit path.

With SQLite's default (wal_autocheckpoint = 1000 pages) the connection whose COMMIT crosses the
threshold copies the WAL back into the database and fsyncs it inside that commit. The group
writer commits often with small groups under light load, so every few hundred milliseconds one
commit took that pause, and every send in that group (and the groups queued behind it) waited:
one source of the delivery latency tail (bench/RESULTS.md). Here the writer connection never
checkpoints itself; this thread runs PASSIVE checkpoints (which never wait on the writer or
readers) on its own connection at a fixed interval.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["Checkpointer"]

log = logging.getLogger("veil.server.checkpoint")

# Seconds between checkpoints. Short on purpose: each checkpoint ends in an fsync of the database
# file, and on ext4 that flush stalls the writer's WAL appends for as long as it lasts, so many
# small checkpoints cost the delivery tail far less than few large ones. A/B at 10,000 msg/s,
# p99: 10–29 ms at 0.5 s, 8.9–12.8 ms at 0.25 s, 6.6–9.8 ms at 0.1 s, 5.5–7.0 ms at 0.05 s, with
# throughput and the 1,000 msg/s tail no worse. With an idle WAL a checkpoint is a no-op.
INTERVAL = 0.05


class Checkpointer:
    def __init__(self, path: str, interval: float = INTERVAL) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        # A daemon: an app that is never closed (some tests) must not keep the process alive.
        self._thread = threading.Thread(target=self._run, name="veil-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or gone: the next round tries again
                    log.debug("checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
