"""Administration on the server machine (`veil admin …`): plain async functions over a Store.

- `reports_overview`: every abuse report with what the reporter revealed, and every regular
  message the word list flagged.
- `export_account`: one account's profile, devices, blocks, regular threads with all their
  messages, and for secret threads only the envelope metadata log (peer, time, size): never
  ciphertext, never keys, never token or password hashes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from veil.server.config import ServerConfig
from veil.server.services.reports import regular_json
from veil.server.storage.base import Store
from veil.server.storage.base_extras import LogRow
from veil.server.storage.sql import SqlStore

__all__ = ["UnknownAccount", "export_account", "open_store", "reports_overview"]


class UnknownAccount(LookupError):
    """No account has this handle."""


def open_store(data_dir: Path, db: str | None = None) -> SqlStore:
    """The server's database: `db` if given, else the SQLite file under `data_dir`.
    Raises ValueError for an unsupported URL and FileNotFoundError for a missing SQLite file."""
    config = ServerConfig(data_dir=data_dir, db_url=db)
    if db is None and not (data_dir / "veil.db").is_file():
        raise FileNotFoundError(f"no Veil database in {data_dir} (use --data-dir or --db)")
    return SqlStore(config.database_url)


async def reports_overview(store: Store) -> dict[str, Any]:
    reports = [{"report_id": r.report_id, "created_at": r.created_at, "reporter": r.reporter,
                "reporter_device": r.reporter_device, "peer": r.peer, "kind": r.kind, "verdict": r.verdict,
                "reason": r.reason, "content": json.loads(r.content_json)}
               for r in await store.list_reports()]
    flagged = [regular_json(m) for m in await store.flagged_messages()]
    return {"reports": reports, "flagged": flagged}


def _log_entry(handle: str, row: LogRow) -> tuple[str, dict[str, Any]]:
    sent = row.sender == handle
    peer = row.recipient_handle if sent else row.sender
    return peer, {"direction": "sent" if sent else "received", "time": row.server_ts, "size": row.size,
                  "sender_device": row.sender_device, "recipient_device": row.recipient_device}


async def export_account(store: Store, handle: str, *, now: int) -> dict[str, Any]:
    account = await store.get_account(handle)
    if account is None:
        raise UnknownAccount(handle)
    devices = [{"device_id": d.device_id, "name": d.name, "state": d.state, "created_at": d.created_at,
                "last_seen": d.last_seen} for d in await store.devices_of([handle])]
    regular: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in await store.regular_messages_of(handle):
        a, _, b = m.thread_key.partition("|")
        message = regular_json(m)
        message["hidden_from_account"] = m.hidden_for == handle
        regular[b if a == handle else a].append(message)
    secret: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in await store.envelope_log_of(handle):
        peer, entry = _log_entry(handle, row)
        secret[peer].append(entry)
    return {
        "exported_at": now,
        "profile": {"handle": account.handle, "display_name": account.display_name,
                    "created_at": account.created_at},
        "devices": devices,
        "blocked": await store.blocked_by(handle),
        "regular_threads": [{"peer": p, "messages": regular[p]} for p in sorted(regular)],
        "secret_threads": [{"peer": p, "envelopes": secret[p]} for p in sorted(secret)],
    }
