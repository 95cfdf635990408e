"""The `veil` command: run a server, or use one device from a profile folder."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from veil.client.device import Device
from veil.client.errors import ClientError
from veil.client.linking import link_new_device, offer_link
from veil.client.models import Message
from veil.client.stream import listen as stream_listen

__all__ = ["app"]

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


def _run(coro: Coroutine[Any, Any, T]) -> T:
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


def _password(confirm: bool = False) -> str:
    return _secret_input("VEIL_PASSWORD", "Password", confirm=confirm)


def _passphrase(confirm: bool = False) -> str:
    return _secret_input("VEIL_PASSPHRASE", "Store passphrase", confirm=confirm)


async def _with_device(fn: Callable[[Device], Awaitable[T]]) -> T:
    device = await Device.open(Ctx.profile, _passphrase(), server=Ctx.server)
    try:
        return await fn(device)
    finally:
        await device.close()


def _fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _print_message(m: Message, me: str) -> None:
    lock = "🔒 " if m.is_secret else ""
    if m.is_notice:
        out.print(f"[dim]{_fmt_time(m.sent_at)}[/dim] [yellow]— {m.text}[/yellow]", highlight=False)
        return
    who = "you" if m.sender == me else m.sender
    held = " [red](held)[/red]" if m.status == "held" else ""
    out.print(f"[dim]{_fmt_time(m.sent_at)}[/dim] {lock}[bold]{who}[/bold]: {m.text}{held}", highlight=False)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8800, help="Port to listen on."),
    data_dir: Path = typer.Option(Path("veil-data"), help="Folder for the database and logs."),
    db: str | None = typer.Option(None, help="Database URL (default: SQLite under --data-dir)."),
    envelope_max_age: int = typer.Option(30 * 86400, help="Seconds before undelivered envelopes are purged."),
) -> None:
    """Run the Veil server."""
    from veil.server.config import ServerConfig
    from veil.server.run import serve as run_server

    run_server(ServerConfig(host=host, port=port, data_dir=data_dir, db_url=db,
                            envelope_max_age=envelope_max_age))


@app.command()
def register(
    handle: str,
    name: str = typer.Option("", help="Display name."),
    device_name: str = typer.Option("first device", help="Name of this device."),
) -> None:
    """Create an account with this profile as its first device."""
    password, passphrase = _password(confirm=True), _passphrase(confirm=True)

    async def go() -> None:
        d = await Device.register(Ctx.profile, Ctx.server or DEFAULT_SERVER, handle, password, passphrase,
                                  display_name=name, device_name=device_name)
        out.print(f"Registered [bold]{handle}[/bold]; this device is {d.device_id}. Profile: {Ctx.profile}")
        await d.close()

    _run(go())


@app.command()
def login(handle: str, device_name: str = typer.Option("new device", help="Name of this device.")) -> None:
    """Log this profile in as a new device (regular threads; link it for secret ones)."""
    password, passphrase = _password(), _passphrase(confirm=True)

    async def go() -> None:
        d = await Device.login(Ctx.profile, Ctx.server or DEFAULT_SERVER, handle, password, passphrase,
                               device_name=device_name)
        out.print(f"Logged in as {handle} (device {d.device_id}). For secret conversations, run "
                  "`veil link-code` on one of your devices and `veil link` here.")
        await d.close()

    _run(go())


@app.command()
def link(
    handle: str,
    code: str = typer.Option("", help="The code shown by `veil link-code` on an existing device."),
    device_name: str = typer.Option("linked device", help="Name of this device."),
) -> None:
    """Add this profile as a new device of your account, with a code from an existing device."""
    if not code:
        code = str(typer.prompt("Link code (from `veil link-code` on your other device)"))
    password, passphrase = _password(), _passphrase(confirm=True)

    async def go() -> None:
        d = await link_new_device(Ctx.profile, Ctx.server or DEFAULT_SERVER, handle, password, passphrase,
                                  code, device_name=device_name)
        out.print(f"Linked: this device ({d.device_id}) now belongs to {handle}.")
        await d.close()

    _run(go())


@app.command("link-code")
def link_code(timeout: float = typer.Option(300.0, help="Seconds to wait for the new device.")) -> None:
    """Show a one-time code for linking a new device, and wait for it."""

    async def go(d: Device) -> None:
        offer = await offer_link(d)
        out.print(f"On the new device run:  veil link {d.handle} --code {offer.code}")
        out.print("Waiting for it…")
        new_id = await offer.complete(timeout=timeout)
        out.print(f"Device {new_id} is now linked to your account.")

    _run(_with_device(go))


@app.command()
def devices(revoke: str = typer.Option("", help="Revoke this device id.")) -> None:
    """List this account's devices, or revoke one."""

    async def go(d: Device) -> None:
        if revoke:
            await d.revoke(revoke)
            out.print(f"Revoked {revoke}.")
            return
        for dev in await d.devices():
            me = " (this device)" if dev["device_id"] == d.device_id else ""
            out.print(f"{dev['device_id']}  {dev['name']}  {dev['state']}  last seen "
                      f"{_fmt_time(int(dev['last_seen']))}{me}", highlight=False)

    _run(_with_device(go))


@app.command()
def threads() -> None:
    """List conversations, newest first."""

    async def go(d: Device) -> None:
        await d.sync()
        for t in d.threads():
            lock = "🔒 secret " if t.is_secret else ""
            out.print(f"{lock}[bold]{t.peer}[/bold]  {_fmt_time(t.last_ts)}  {t.last_text}", highlight=False)

    _run(_with_device(go))


@app.command()
def send(
    handle: str,
    text: str,
    secret: bool = typer.Option(False, "--secret", help="Send in the secret thread."),
) -> None:
    """Send a message."""

    async def go(d: Device) -> None:
        if secret:
            await d.sync()  # learn about new devices and pending messages first
        m = await d.send_text(handle, text, secret=secret)
        out.print(f"Sent to {handle}{' (secret)' if secret else ''} at {_fmt_time(m.sent_at)}.")

    _run(_with_device(go))


@app.command()
def read(
    handle: str,
    secret: bool = typer.Option(False, "--secret", help="The secret thread."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    no_sync: bool = typer.Option(False, "--no-sync", help="Show what is stored without fetching."),
) -> None:
    """Show a thread."""

    async def go(d: Device) -> None:
        if not no_sync:
            await d.sync()
        messages = d.messages(handle, secret=secret)
        if as_json:
            for m in messages:
                sys.stdout.write(json.dumps(m.to_json(), ensure_ascii=False) + "\n")
            return
        if secret:
            out.print("[green]🔒 Messages are end-to-end encrypted.[/green]")
        for m in messages:
            _print_message(m, d.handle)

    _run(_with_device(go))


@app.command()
def sync() -> None:
    """Fetch and store what is waiting on the server, then exit."""

    async def go(d: Device) -> None:
        n = await d.sync()
        out.print(f"{n} new item{'s' if n != 1 else ''}.")

    _run(_with_device(go))


@app.command()
def listen() -> None:
    """Stay connected and print messages as they arrive (Ctrl-C to stop)."""

    async def go(d: Device) -> None:
        d.add_listener(lambda m: _print_message(m, d.handle))
        await stream_listen(d)

    _run(_with_device(go))


@app.command()
def trust(handle: str) -> None:
    """Accept a contact's new identity key and send what was held for them."""

    async def go(d: Device) -> None:
        n = await d.confirm_identity(handle)
        out.print(f"Accepted {handle}'s new identity key; sent {n} held message{'s' if n != 1 else ''}.")

    _run(_with_device(go))
