"""Build a device's web app and serve one or more of them in one event loop with uvicorn.

The Device, its stream listener, its expiry tick and uvicorn share the loop, so requests call
the device directly (no threads, no locks beyond the device's own). Shutdown: Ctrl-C (or
SIGTERM) sets one event; every server stops, then every device closes its store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from veil.web import routes_chat, routes_settings, routes_setup
from veil.web.common import PACKAGE, Web
from veil.web.security import Guard, new_key
from veil.web.session import AppState

__all__ = ["AppSpec", "RunningApp", "build_app", "serve_apps"]

log = logging.getLogger("veil.web")


def build_app(web: Web, key: str) -> Guard:
    app = Starlette(routes=[*routes_setup.routes, *routes_chat.routes, *routes_settings.routes,
                            Mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")])
    app.state.web = web
    return Guard(app, key=key, port=web.port)


@dataclass
class AppSpec:
    """One device app to run: its profile, port (0 = any free one), server and optional passphrase."""

    profile: Path
    port: int = 0
    server: str = "http://127.0.0.1:8800"
    server_given: bool = False
    passphrase: str | None = None
    label: str = ""
    key: str = field(default_factory=new_key)


@dataclass
class RunningApp:
    spec: AppSpec
    state: AppState
    port: int
    server: uvicorn.Server
    tmp: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?key={self.spec.key}"


class _QuietServer(uvicorn.Server):
    """uvicorn's own signal capture would stop only one of several servers: we handle signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve_apps(specs: list[AppSpec], *, announce: Callable[[list[RunningApp]], None] | None = None,
                     stop: asyncio.Event | None = None) -> None:
    """Run every app until Ctrl-C / SIGTERM (or `stop`); `announce` gets them once they listen."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    running: list[RunningApp] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for spec in specs:
            sock = _bind(spec.port)
            port = int(sock.getsockname()[1])
            state = AppState(spec.profile, server=spec.server, passphrase=spec.passphrase)
            state.server_given = spec.server_given
            tmp = Path(tempfile.mkdtemp(prefix="veil-web-"))  # mode 0700: decrypted media in flight
            config = uvicorn.Config(build_app(Web(state=state, port=port, tmp=tmp), spec.key), log_level="warning",
                                    lifespan="off", timeout_graceful_shutdown=2, ws="none")
            server = _QuietServer(config)
            running.append(RunningApp(spec=spec, state=state, port=port, server=server, tmp=tmp))
            await state.start()
            tasks.append(asyncio.ensure_future(server.serve(sockets=[sock])))
        while not all(r.server.started for r in running):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.05)
        if announce is not None:
            announce(running)
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        for r in running:
            r.server.should_exit = True
        for r in running:
            await r.state.close()  # ends the event streams too, so uvicorn can finish
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for r in running:
            shutil.rmtree(r.tmp, ignore_errors=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            print(f"web app stopped: {t.exception()}", file=sys.stderr)
