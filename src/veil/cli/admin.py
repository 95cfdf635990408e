"""`veil admin …`: run on the server machine against the server's database.

    veil admin reports [--data-dir D | --db URL] [--json]
    veil admin export HANDLE --out FILE.json [--data-dir D | --db URL]

Mounted by the main CLI as `app.add_typer(admin_app, name="admin")`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from veil.server.storage.sql import SqlStore

__all__ = ["admin_app"]

admin_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="Server administration: abuse reports and account exports.")
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

DATA_DIR = typer.Option(Path("veil-data"), "--data-dir", help="The server's data folder (SQLite database).")
DB = typer.Option(None, "--db", help="Database URL instead (postgresql://... or sqlite:///...).")


def _with_store(data_dir: Path, db: str | None, fn: Callable[[SqlStore], Awaitable[T]]) -> T:
    from veil.server.admin import open_store

    try:
        store = open_store(data_dir, db)
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None

    async def run() -> T:
        try:
            await store.migrate()
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _content(messages: list[dict[str, Any]]) -> str:
    lines = []
    for m in messages:
        what = m.get("text") or ""
        if m.get("sticker"):
            what += f" [sticker {m['sticker']}]"
        att = m.get("attachment")
        if att:
            what += f" [{att.get('mime', '?')} {att.get('name') or ''} {att.get('size', 0)} B]".replace("  ", " ")
        lines.append(f"{m.get('sender', '?')}: {what.strip()}")
    return "\n".join(lines)


@admin_app.command()
def reports(data_dir: Path = DATA_DIR, db: str | None = DB,
            as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """List abuse reports (with the revealed content) and messages flagged by the word list."""
    from veil.server.admin import reports_overview

    overview = _with_store(data_dir, db, reports_overview)
    if as_json:
        typer.echo(json.dumps(overview, indent=2, ensure_ascii=False))
        return
    # One block per report rather than a table: revealed content is long and must not be folded.
    out.print(f"[bold]Reports ({len(overview['reports'])})[/bold]")
    for r in overview["reports"]:
        out.print(f"\n[bold]{r['report_id']}[/bold]  {_time(r['created_at'])}  {r['reporter']} reported "
                  f"{r['peer']}  {r['kind']}  [green]{r['verdict']}[/green]", soft_wrap=True, highlight=False)
        out.print(f"  reason: {r['reason'] or '-'}", soft_wrap=True, highlight=False, markup=False)
        for line in _content(r["content"]).splitlines():
            out.print(f"  | {line}", soft_wrap=True, highlight=False, markup=False)
    out.print(f"\n[bold]Flagged regular messages ({len(overview['flagged'])})[/bold]")
    for m in overview["flagged"]:
        out.print(f"{m['message_id']}  {_time(m['ts'])}  {m['sender']} → {m['recipient']}: {m['text']}",
                  soft_wrap=True, highlight=False, markup=False)


@admin_app.command()
def export(handle: str = typer.Argument(..., help="The account to export."),
           out_file: Path = typer.Option(..., "--out", help="Where to write the JSON."),
           data_dir: Path = DATA_DIR, db: str | None = DB) -> None:
    """Export one account: profile, devices, regular threads, and secret-thread metadata only."""
    from veil.server.admin import UnknownAccount, export_account

    async def run(store: SqlStore) -> dict[str, Any] | None:
        try:
            return await export_account(store, handle, now=time.time_ns() // 1_000_000)
        except UnknownAccount:
            return None

    data = _with_store(data_dir, db, run)
    if data is None:
        err.print(f"[red]error:[/red] no account {handle!r}", highlight=False)
        raise typer.Exit(1)
    out_file.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    n = sum(len(t["messages"]) for t in data["regular_threads"])
    out.print(f"exported {handle}: {len(data['devices'])} devices, {n} regular messages, "
              f"{sum(len(t['envelopes']) for t in data['secret_threads'])} secret envelopes (metadata) "
              f"→ {out_file}", highlight=False)
