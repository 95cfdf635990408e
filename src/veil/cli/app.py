"""`veil app` (one device's web UI) and `veil demo` (a server plus alice's and bob's apps)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer

from veil.cli.common import DEFAULT_SERVER, Ctx, app

__all__ = ["app_command", "demo_command"]


@app.command("app")
def app_command(
    profile: Path | None = typer.Option(None, "--profile", "-p", help="Folder that holds this device."),
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0 = any free port)."),
    server: str | None = typer.Option(None, "--server", "-s", help="Server URL (default: the profile's own)."),
) -> None:
    """Run this device and serve its web UI on 127.0.0.1 (open the printed link)."""
    from veil.web.server import AppSpec, RunningApp, serve_apps

    chosen = server or Ctx.server
    spec = AppSpec(profile=profile or Ctx.profile, port=port, server=chosen or DEFAULT_SERVER,
                   server_given=chosen is not None, passphrase=os.environ.get("VEIL_PASSPHRASE") or None)

    def announce(apps: list[RunningApp]) -> None:
        for a in apps:
            print(f"Veil app for {a.spec.profile} (Ctrl-C to stop):\n  {a.url}", flush=True)

    asyncio.run(serve_apps([spec], announce=announce))


@app.command("demo")
def demo_command(
    reset: bool = typer.Option(False, "--reset", help="Delete the demo folder first (a fresh start)."),
    folder: Path = typer.Option(Path("veil-demo"), "--dir", help="Folder for the server's and devices' data."),
    port: int = typer.Option(8800, help="Server port; alice's app uses the next one, bob's the one after."),
) -> None:
    """Start a server and two people (alice, bob) with their apps; print both links."""
    from veil.web.demo import run_demo

    run_demo(folder, port=port, reset=reset)
