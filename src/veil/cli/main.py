"""The `veil` command: run a server, or use one device from a profile folder."""

from __future__ import annotations

import typer

from veil.cli import app as _app_cmds  # noqa: F401  (registers `app` and `demo`)
from veil.cli import chat, verify  # noqa: F401  (they register their commands on `app`)
from veil.cli.admin import admin_app
from veil.cli.common import DEFAULT_SERVER, Ctx, app, fmt_time, out, passphrase, password, run, with_device
from veil.client.device import Device
from veil.client.linking import link_new_device, offer_link

__all__ = ["app"]

app.add_typer(admin_app, name="admin", help="Operator tools: reports and lawful export.")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []}, add_help_option=False)
def serve(ctx: typer.Context) -> None:
    """Run the Veil server (`veil serve --help` lists its options)."""
    # The options are declared once, in veil.server.__main__ (also `python -m veil.server`).
    from veil.server.__main__ import parse_args
    from veil.server.run import serve as run_server

    run_server(parse_args(list(ctx.args), prog="veil serve"))


@app.command()
def register(
    handle: str,
    name: str = typer.Option("", help="Display name."),
    device_name: str = typer.Option("first device", help="Name of this device."),
) -> None:
    """Create an account with this profile as its first device."""
    pw, phrase = password(confirm=True), passphrase(confirm=True)

    async def go() -> None:
        d = await Device.register(Ctx.profile, Ctx.server or DEFAULT_SERVER, handle, pw, phrase,
                                  display_name=name, device_name=device_name)
        out.print(f"Registered [bold]{handle}[/bold]; this device is {d.device_id}. Profile: {Ctx.profile}")
        await d.close()

    run(go())


@app.command()
def login(handle: str, device_name: str = typer.Option("new device", help="Name of this device.")) -> None:
    """Log this profile in as a new device (regular threads; link it for secret ones)."""
    pw, phrase = password(), passphrase(confirm=True)

    async def go() -> None:
        d = await Device.login(Ctx.profile, Ctx.server or DEFAULT_SERVER, handle, pw, phrase,
                               device_name=device_name)
        out.print(f"Logged in as {handle} (device {d.device_id}). For secret conversations, run "
                  "`veil link-code` on one of your devices and `veil link` here.")
        await d.close()

    run(go())


@app.command()
def link(
    handle: str,
    code: str = typer.Option("", help="The code shown by `veil link-code` on an existing device."),
    device_name: str = typer.Option("linked device", help="Name of this device."),
) -> None:
    """Add this profile as a new device of your account, with a code from an existing device."""
    if not code:
        code = str(typer.prompt("Link code (from `veil link-code` on your other device)"))
    pw, phrase = password(), passphrase(confirm=True)

    async def go() -> None:
        d = await link_new_device(Ctx.profile, Ctx.server or DEFAULT_SERVER, handle, pw, phrase, code,
                                  device_name=device_name)
        out.print(f"Linked: this device ({d.device_id}) now belongs to {handle}.")
        await d.close()

    run(go())


@app.command("link-code")
def link_code(timeout: float = typer.Option(300.0, help="Seconds to wait for the new device.")) -> None:
    """Show a one-time code for linking a new device, and wait for it."""

    async def go(d: Device) -> None:
        offer = await offer_link(d)
        out.print(f"On the new device run:  veil link {d.handle} --code {offer.code}")
        out.print("Waiting for it…")
        new_id = await offer.complete(timeout=timeout)
        out.print(f"Device {new_id} is now linked to your account.")

    run(with_device(go))


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
                      f"{fmt_time(int(dev['last_seen']))}{me}", highlight=False)

    run(with_device(go))
