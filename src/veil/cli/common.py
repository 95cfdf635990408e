"""Shared pieces of the `veil` command: the app, global options, running, printing."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from veil.client.device import Device
from veil.client.errors import ClientError
from veil.client.models import Message
from veil.client.timers import describe

__all__ = ["DEFAULT_SERVER", "Ctx", "app", "err", "fmt_time", "out", "passphrase", "password", "print_message",
           "run", "with_device"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Veil: direct messages, with end-to-end encrypted secret conversations.")
out = Console()
err = Console(stderr=True)
T = TypeVar("T")
DEFAULT_SERVER = "http://127.0.0.1:8800"


class Ctx:
    profile: Path = Path(os.environ.get("VEIL_PROFILE", str(Path.home() / ".veil")))
    server: str | None = None


@app.callback()
def _global(
    profile: Path = typer.Option(Ctx.profile, "--profile", "-p", help="Folder that holds this device."),
    server: str | None = typer.Option(None, "--server", "-s", help="Server URL (saved in the profile)."),
) -> None:
    Ctx.profile = profile
    Ctx.server = server


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; turn library errors into one clear line and exit status 1."""
    try:
        return asyncio.run(coro)
    except ClientError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _secret_input(env: str, prompt: str, *, confirm: bool = False) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        err.print(f"[red]error:[/red] set {env} or run in a terminal to be asked for the {prompt.lower()}")
        raise typer.Exit(1)
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def password(confirm: bool = False) -> str:
    return _secret_input("VEIL_PASSWORD", "Password", confirm=confirm)


def passphrase(confirm: bool = False) -> str:
    return _secret_input("VEIL_PASSPHRASE", "Store passphrase", confirm=confirm)


async def with_device(fn: Callable[[Device], Awaitable[T]]) -> T:
    device = await Device.open(Ctx.profile, passphrase(), server=Ctx.server)
    try:
        device.expire()  # messages that ran out while the device was closed
        return await fn(device)
    finally:
        await device.close()


def fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def print_message(m: Message, me: str, *, show_ids: bool = False) -> None:
    stamp = f"[dim]{fmt_time(m.sent_at)}[/dim]"
    if m.is_notice:
        out.print(f"{stamp} [yellow]— {escape(m.text)}[/yellow]", highlight=False)
        return
    lock = "🔒 " if m.is_secret else ""
    who = "you" if m.sender == me else m.sender
    body = m.text
    if m.kind == "sticker":
        body = f"[sticker {m.sticker}]"
    elif m.attachment is not None:
        a = m.attachment
        size = f"{a.get('width')}×{a.get('height')}" if a.get("width") else ""
        dur = f" {int(a.get('duration_ms') or 0) / 1000:.1f}s" if a.get("duration_ms") else ""
        body = f"[{m.kind} {a.get('name', '')} {a.get('mime', '')} {size}{dur}, {a.get('size', 0)} bytes]" + (
            f" {m.text}" if m.text else "")
    extra = ""
    if m.status == "held":
        extra += " [red](held)[/red]"
    if m.status == "read" and m.sender == me:
        extra += " [dim](read)[/dim]"
    if m.timer:
        extra += f" [magenta]⏱ {describe(m.timer)}[/magenta]"
    ident = f" [dim]#{m.id}[/dim]" if show_ids else ""
    out.print(f"{stamp} {lock}[bold]{escape(who)}[/bold]: {escape(body)}{extra}{ident}", highlight=False)
