"""Conversation commands: threads, send, read, save, timer, unsend, report, block, listen."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.markup import escape

from veil.cli.common import app, fmt_time, out, print_message, run, with_device
from veil.client.device import Device
from veil.client.errors import UsageError
from veil.client.stickers import load_pack
from veil.client.stream import listen as stream_listen
from veil.client.timers import describe, parse_timer

SECRET = typer.Option(False, "--secret", help="The secret (end-to-end encrypted) thread.")


@app.command()
def threads() -> None:
    """List conversations, newest first."""

    async def go(d: Device) -> None:
        await d.sync()
        for t in d.threads():
            lock = "🔒 secret " if t.is_secret else ""
            timer = f" ⏱ {describe(t.timer)}" if t.timer else ""
            out.print(f"{lock}[bold]{t.peer}[/bold]{timer}  {fmt_time(t.last_ts)}  {escape(t.last_text)}",
                      highlight=False)

    run(with_device(go))


@app.command()
def send(
    handle: str,
    text: str = typer.Argument("", help="The message (or a caption for a photo or video)."),
    secret: bool = SECRET,
    photo: Path | None = typer.Option(None, "--photo", help="Send a photo (JPEG, PNG, WebP, GIF)."),
    video: Path | None = typer.Option(None, "--video", help="Send a video (MP4, WebM)."),
    sticker: str = typer.Option("", "--sticker", help="Send a sticker by id (see `veil stickers`)."),
) -> None:
    """Send a message, photo, video or sticker."""
    if sum(bool(x) for x in (photo, video, sticker)) > 1:
        raise typer.BadParameter("send one of --photo, --video or --sticker at a time")

    async def go(d: Device) -> None:
        if secret:
            await d.sync()  # learn about new devices, timers and pending messages first
        media = photo or video
        if media is not None:
            m = await d.send_media(handle, media, secret=secret, caption=text)
            if (m.kind == "video") != (video is not None):
                out.print(f"[yellow]note:[/yellow] {media.name} was sent as a {m.kind}")
        elif sticker:
            m = await d.send_sticker(handle, sticker, secret=secret)
        else:
            m = await d.send_text(handle, text, secret=secret)
        timer = f", disappears {describe(m.timer)} after it is read" if m.timer else ""
        out.print(f"Sent to {handle}{' (secret)' if secret else ''} at {fmt_time(m.sent_at)}{timer}. id {m.id}")

    run(with_device(go))


@app.command()
def read(
    handle: str,
    secret: bool = SECRET,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    no_sync: bool = typer.Option(False, "--no-sync", help="Show what is stored without fetching."),
) -> None:
    """Show a thread (this counts as reading it: disappearing timers start)."""

    async def go(d: Device) -> None:
        if not no_sync:
            await d.sync()
        await d.mark_read(handle, secret=secret, receipt=not no_sync)
        messages = d.messages(handle, secret=secret)
        if as_json:
            for m in messages:
                sys.stdout.write(json.dumps(m.to_json(), ensure_ascii=False) + "\n")
            return
        if secret:
            out.print("[green]🔒 Messages are end-to-end encrypted.[/green]")
            if d.timer(handle):
                out.print(f"[magenta]⏱ Disappearing messages: {describe(d.timer(handle))}[/magenta]")
        for m in messages:
            print_message(m, d.handle, show_ids=True)

    run(with_device(go))


@app.command()
def save(handle: str, message_id: str, out_path: Path = typer.Argument(..., metavar="OUT"),
         secret: bool = SECRET) -> None:
    """Write a message's photo or video, decrypted, to OUT (a file or a folder)."""

    async def go(d: Device) -> None:
        m = next((m for m in d.messages(handle, secret=secret) if m.id == message_id), None)
        if m is None:
            raise UsageError(f"no message {message_id} in this thread")
        written = d.save_attachment(message_id, out_path)
        out.print(f"Saved {written}")

    run(with_device(go))


@app.command()
def timer(handle: str, value: str = typer.Argument(..., help="off, 5s, 30s, 1m, 5m, 1h, 1d or 7d")) -> None:
    """Set disappearing messages for the secret thread with HANDLE."""
    try:
        seconds = parse_timer(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def go(d: Device) -> None:
        await d.sync()
        await d.set_timer(handle, seconds)
        out.print(f"Disappearing messages with {handle}: {describe(seconds)}.")

    run(with_device(go))


@app.command()
def unsend(handle: str, message_id: str, secret: bool = SECRET) -> None:
    """Unsend one of your messages (within 24 hours) from every device of both of you."""

    async def go(d: Device) -> None:
        await d.unsend(handle, message_id, secret=secret)
        out.print("Unsent. Copies saved elsewhere (screenshots, forwards) remain.")

    run(with_device(go))


@app.command()
def screenshot(handle: str) -> None:
    """Tell HANDLE you took a screenshot of your secret thread."""

    async def go(d: Device) -> None:
        await d.notify_screenshot(handle)
        out.print("Sent a screenshot notice.")

    run(with_device(go))


@app.command()
def report(
    handle: str,
    secret: bool = SECRET,
    last: int = typer.Option(0, "--last", help="Report the last N messages from HANDLE."),
    message: list[str] = typer.Option([], "--message", help="Report this message id (repeatable)."),
    reason: str = typer.Option("", "--reason", help="What is wrong, for the moderators."),
) -> None:
    """Report messages from HANDLE: only those messages are revealed to the server."""

    async def go(d: Device) -> None:
        await d.sync()
        r = await d.report(handle, secret=secret, last=last, message_ids=message, reason=reason)
        out.print(f"Report {r.get('report_id', '')} sent: {r.get('verdict', 'received')}.")

    run(with_device(go))


@app.command()
def block(handle: str, undo: bool = typer.Option(False, "--undo", help="Unblock instead.")) -> None:
    """Block (or with --undo unblock) HANDLE: their messages are not delivered to you."""

    async def go(d: Device) -> None:
        if undo:
            await d.unblock(handle)
            out.print(f"Unblocked {handle}. New messages will reach you again.")
        else:
            await d.block(handle)
            out.print(f"Blocked {handle}.")

    run(with_device(go))


@app.command()
def stickers() -> None:
    """List the built-in stickers."""
    pack = load_pack()
    for s in pack.stickers:
        out.print(f"{s.id:16} {s.name}", highlight=False)


@app.command()
def sync() -> None:
    """Fetch and store what is waiting on the server, then exit."""

    async def go(d: Device) -> None:
        n = await d.sync()
        out.print(f"{n} new item{'s' if n != 1 else ''}.")

    run(with_device(go))


@app.command()
def listen() -> None:
    """Stay connected and print messages as they arrive (Ctrl-C to stop)."""

    async def go(d: Device) -> None:
        d.add_listener(lambda m: print_message(m, d.handle))
        await stream_listen(d)

    run(with_device(go))


@app.command()
def trust(handle: str) -> None:
    """Accept a contact's new identity key and send what was held for them."""

    async def go(d: Device) -> None:
        n = await d.confirm_identity(handle)
        out.print(f"Accepted {handle}'s new identity key; sent {n} held message{'s' if n != 1 else ''}.")

    run(with_device(go))
