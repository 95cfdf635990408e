"""The device behind one web app, and the background work that keeps it live.

States of an app (one module owns them; the routes only read `status`):

    locked   a device exists in the profile; the store passphrase is needed   → unlock → ready
    setup    the profile holds no device: sign up, log in or link             → ready | linking
    linking  a new device waits for the code's other half on an old device    → ready | setup
    ready    the device is open: the stream listener and the expiry tick run  (until close)

Live updates: anything that may change what a page shows calls `bump()`; event streams wait
on `changed()` and then compare a fingerprint of their view, so a missed bump only delays an
update by the one-second tick, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from veil.client.device import Device
from veil.client.errors import ClientError, NotSetUp, ServerRejected
from veil.client.linking import LinkOffer, link_new_device, offer_link
from veil.client.models import Message
from veil.client.store import Store
from veil.client.stream import listen

__all__ = ["AppState", "LinkProgress", "Status"]

log = logging.getLogger("veil.web")

Status = Literal["locked", "setup", "linking", "ready"]
Clock = Callable[[], int]


class LinkProgress:
    """A link offered from this (ready) device: the code to show and how it ended."""

    def __init__(self, offer: LinkOffer) -> None:
        self.offer = offer
        self.code = offer.code
        self.result = ""  # "" while waiting; then the new device id
        self.error = ""
        self.task: asyncio.Task[None] | None = None


class AppState:
    def __init__(self, profile: Path, *, server: str, passphrase: str | None = None,
                 clock: Clock | None = None) -> None:
        self.profile = profile
        self.server = server  # for sign-up forms; an existing profile keeps its own unless given
        self.server_given = False
        self._passphrase = passphrase
        self.clock = clock
        self.device: Device | None = None
        self.status: Status = "locked" if Store.exists(profile) else "setup"
        self.error = ""  # shown once on the setup / unlock / link screens
        self.link: LinkProgress | None = None
        self._setup_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._tick = asyncio.Event()

    # -- live updates ---------------------------------------------------------------------------
    def bump(self, _m: Message | None = None) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def changed(self, timeout: float = 1.0) -> None:
        """Return at the next change, or after `timeout` seconds at the latest."""
        tick = self._tick
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tick.wait(), timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- opening --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the device at launch when the passphrase came from the environment."""
        if self.status == "locked" and self._passphrase:
            try:
                await self.unlock(self._passphrase)
            except ClientError as exc:
                self.error = str(exc)

    async def unlock(self, passphrase: str) -> None:
        server = self.server if self.server_given else None
        try:
            if self.clock is None:
                device = await Device.open(self.profile, passphrase, server=server)
            else:
                device = await Device.open(self.profile, passphrase, server=server, clock=self.clock)
        except NotSetUp:
            self.status = "setup"
            return
        self._adopt(device)

    async def sign_up(self, server: str, handle: str, display_name: str, password: str, passphrase: str) -> None:
        if self.clock is None:
            device = await Device.register(self.profile, server, handle, password, passphrase,
                                           display_name=display_name, device_name="web app")
        else:
            device = await Device.register(self.profile, server, handle, password, passphrase,
                                           display_name=display_name, device_name="web app", clock=self.clock)
        self._adopt(device)

    async def log_in(self, server: str, handle: str, password: str, passphrase: str) -> None:
        if self.clock is None:
            device = await Device.login(self.profile, server, handle, password, passphrase, device_name="web app")
        else:
            device = await Device.login(self.profile, server, handle, password, passphrase, device_name="web app",
                                        clock=self.clock)
        self._adopt(device)

    def start_link(self, server: str, handle: str, password: str, passphrase: str, code: str) -> None:
        """Complete a link in the background: it waits until the old device answers."""
        async def run() -> None:
            try:
                device = await link_new_device(self.profile, server, handle, password, passphrase, code,
                                               device_name="web app", clock=self.clock)
            except (ClientError, OSError) as exc:
                self.error = str(exc)
                self.status = "locked" if Store.exists(self.profile) else "setup"
            else:
                self._adopt(device)
            self.bump()

        self.status = "linking"
        self.error = ""
        self._setup_task = asyncio.ensure_future(run())

    def _adopt(self, device: Device) -> None:
        self.device = device
        self.status = "ready"
        self.error = ""
        device.add_listener(self.bump)
        self._tasks = [asyncio.ensure_future(self._listen(device)), asyncio.ensure_future(self._expire(device))]
        self.bump()

    # -- background work ------------------------------------------------------------------------
    async def _listen(self, device: Device) -> None:
        """Keep the delivery stream open; `listen` reconnects itself, this survives its errors."""
        while not self._stop.is_set():
            try:
                await listen(device, stop=self._stop)
            except ServerRejected as exc:
                log.warning("stream refused: %s", exc)
                self.error = str(exc)
            except Exception:
                log.exception("stream listener failed; restarting")
            self.bump()
            if not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 2.0)

    async def _expire(self, device: Device) -> None:
        """Delete disappearing messages on time and let the pages know (every second)."""
        while not self._stop.is_set():
            try:
                async with device.lock:  # never commit an inbox batch half-way through
                    gone = device.expire()
                if gone:
                    self.bump()
            except Exception:
                log.exception("expiry tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)

    # -- linking another device -----------------------------------------------------------------
    async def offer_link(self) -> LinkProgress:
        device = self.require()
        if self.link is not None and self.link.task is not None and not self.link.task.done():
            return self.link
        progress = LinkProgress(await offer_link(device))

        async def wait() -> None:
            try:
                progress.result = await progress.offer.complete()
            except ClientError as exc:
                progress.error = str(exc)
            self.bump()

        progress.task = asyncio.ensure_future(wait())
        self.link = progress
        return progress

    def require(self) -> Device:
        if self.device is None:
            raise RuntimeError("no device is open")  # routes check status first; this is a bug
        return self.device

    async def run_guarded(self, what: Awaitable[None]) -> str:
        """Await a setup step; return "" or the error to show the person."""
        try:
            await what
        except (ClientError, OSError) as exc:
            return str(exc) or exc.__class__.__name__
        return ""

    async def close(self) -> None:
        self._stop.set()
        self.bump()
        pending = [t for t in self._tasks if not t.done()]
        for extra in (self._setup_task, self.link.task if self.link else None):
            if extra is not None and not extra.done():
                extra.cancel()
                pending.append(extra)
        if pending:
            await asyncio.wait(pending, timeout=5)
        if self.device is not None:
            await self.device.close()
            self.device = None
