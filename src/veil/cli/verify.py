"""Verification commands: safety numbers, QR codes, emoji verification."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import typer

from veil.cli.common import app, out, run, with_device
from veil.client.device import Device
from veil.client.errors import UsageError
from veil.client.qr import qr_png, qr_terminal
from veil.client.stream import listen as stream_listen


@app.command()
def safety(
    handle: str,
    png: Path | None = typer.Option(None, "--png", help="Also write the QR code to this PNG file."),
    payload: bool = typer.Option(False, "--payload", help="Print the QR payload as text, for pasting."),
) -> None:
    """Show your safety number with HANDLE, as digits and as a QR code."""

    async def go(d: Device) -> None:
        await d.sync()
        state = "[green]verified[/green]" if d.is_verified(handle) else "[yellow]not verified[/yellow]"
        out.print(f"Safety number with {handle} ({state}):")
        out.print(d.verifications.safety_text(handle), highlight=False)
        qr = d.verifications.qr(handle)
        if payload:
            out.print(base64.b64encode(qr).decode(), highlight=False)
        else:
            out.print(qr_terminal(qr), highlight=False)
        if png is not None:
            qr_png(qr, png)
            out.print(f"QR code written to {png}")

    run(with_device(go))


@app.command()
def verify(
    handle: str,
    scan: str = typer.Option("", "--scan", help="The QR payload from HANDLE's screen (`veil safety --payload`)."),
    yes: bool = typer.Option(False, "--yes", help="The numbers match: mark verified without asking."),
) -> None:
    """Mark HANDLE verified: after comparing safety numbers, or by their QR payload."""

    async def go(d: Device) -> None:
        await d.sync()
        if scan:
            try:
                raw = base64.b64decode(scan, validate=True)
            except ValueError as exc:
                raise UsageError("that is not a Veil QR payload") from exc
            d.verifications.verify_qr(handle, raw)
        else:
            out.print(d.verifications.safety_text(handle), highlight=False)
            if not yes and not typer.confirm(f"Does {handle} see exactly these numbers?"):
                out.print("Not marked verified.")
                return
            d.mark_verified(handle)
        out.print(f"{handle} is verified.")

    run(with_device(go))


@app.command("verify-emoji")
def verify_emoji(
    handle: str,
    accept: bool = typer.Option(False, "--accept", help="Wait for HANDLE's request instead of starting one."),
    timeout: float = typer.Option(120.0, help="Seconds to wait for the other device."),
) -> None:
    """Verify HANDLE interactively: both of you compare 7 emoji."""

    async def go(d: Device) -> None:
        stop = asyncio.Event()
        receiver = asyncio.create_task(stream_listen(d, stop=stop))
        try:
            if accept:
                out.print(f"Waiting for {handle} to start a verification…")
                v = None
                deadline = asyncio.get_running_loop().time() + timeout
                while v is None:
                    v = next((x for x in d.verifications.incoming() if x.peer == handle), None)
                    if asyncio.get_running_loop().time() > deadline:
                        raise UsageError(f"{handle} did not start a verification in time")
                    await asyncio.sleep(0.2)
                await v.accept()
            else:
                v = await d.verifications.start(handle)
                out.print(f"Asked {handle} to verify; waiting for their device…")
                await v.wait("compare", "cancelled", timeout=timeout)
            if v.cancelled:
                raise UsageError("the verification was cancelled")
            out.print("Compare these emoji with the other screen:")
            out.print("   ".join(f"{e} {n}" for e, n in v.emoji))
            if typer.confirm("Do they match exactly?"):
                await v.confirm()
                await v.wait("verified", "cancelled", timeout=timeout)
            else:
                await v.cancel()
            out.print(f"{handle} is verified." if v.verified else "Not verified: nothing was marked.")
        finally:
            stop.set()
            await receiver

    run(with_device(go))
