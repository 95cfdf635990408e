"""Getting a device: unlock, sign up, log in, link (enter a code here, or show one for a new device)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from veil.web.common import HANDLE, back, device_of, field, render, web_of

__all__ = ["routes"]


def _setup_page(request: Request, error: str = "", tab: str = "signup", status_code: int = 200) -> Response:
    state = web_of(request).state
    return render(request, "setup.html", status_code=status_code, error=error or state.error, tab=tab,
                  server=state.server, profile=str(state.profile))


async def home(request: Request) -> Response:
    """The first page: whatever the app's state needs next, else the inbox."""
    state = web_of(request).state
    if state.status == "ready":
        return back("/inbox")
    if state.status == "locked":
        return render(request, "unlock.html", error=state.error, profile=str(state.profile))
    if state.status == "linking":
        return render(request, "linking.html")
    return _setup_page(request)


async def unlock(request: Request) -> Response:
    state = web_of(request).state
    if state.status != "locked":
        return back("/")
    passphrase = await field(request, "passphrase")
    error = await state.run_guarded(state.unlock(passphrase)) if passphrase else "Enter your passphrase."
    if error:
        return render(request, "unlock.html", status_code=400, error=error, profile=str(state.profile))
    return back("/")


async def _account_fields(request: Request) -> tuple[str, str, str, str, str]:
    server = await field(request, "server") or web_of(request).state.server
    handle = (await field(request, "handle")).lower()
    password = await field(request, "password")
    passphrase = await field(request, "passphrase")
    problem = ""
    if not HANDLE.fullmatch(handle):
        problem = "A username is 3 to 32 lowercase letters, digits or underscores."
    elif not password or not passphrase:
        problem = "Fill in the password and the passphrase."
    elif not server.startswith(("http://", "https://")):
        problem = "The server address starts with http:// or https://."
    return server, handle, password, passphrase, problem


async def sign_up(request: Request) -> Response:
    state = web_of(request).state
    if state.status != "setup":
        return back("/")
    server, handle, password, passphrase, problem = await _account_fields(request)
    name = await field(request, "display_name")
    if not problem:
        problem = await state.run_guarded(state.sign_up(server, handle, name or handle, password, passphrase))
    return _setup_page(request, problem, "signup", 400) if problem else back("/")


async def log_in(request: Request) -> Response:
    state = web_of(request).state
    if state.status != "setup":
        return back("/")
    server, handle, password, passphrase, problem = await _account_fields(request)
    if not problem:
        problem = await state.run_guarded(state.log_in(server, handle, password, passphrase))
    return _setup_page(request, problem, "login", 400) if problem else back("/")


async def link_this(request: Request) -> Response:
    """A new device: log in and complete the link with the code shown on an old one."""
    state = web_of(request).state
    if state.status != "setup":
        return back("/")
    server, handle, password, passphrase, problem = await _account_fields(request)
    code = await field(request, "code")
    if not problem and not code:
        problem = "Enter the code your other device shows."
    if problem:
        return _setup_page(request, problem, "link", 400)
    state.start_link(server, handle, password, passphrase, code)
    return back("/")


async def link_other(request: Request) -> Response:
    """On a linked device: show a one-time code for a new device and wait for it."""
    device = device_of(request)
    if device is None:
        return back("/")
    state = web_of(request).state
    if request.method == "POST":  # then back to a GET page, which live updates may reload safely
        try:
            await state.offer_link()
        except Exception as exc:  # shown to the person; the link can simply be started again
            return back("/devices/link?error=" + quote(str(exc) or exc.__class__.__name__))
        return back("/devices/link")
    return render(request, "link.html", link=state.link, linked=device.is_linked,
                  error=request.query_params.get("error", ""))


routes: list[BaseRoute] = [
    Route("/", home),
    Route("/unlock", unlock, methods=["POST"]),
    Route("/signup", sign_up, methods=["POST"]),
    Route("/login", log_in, methods=["POST"]),
    Route("/link", link_this, methods=["POST"]),
    Route("/devices/link", link_other, methods=["GET", "POST"]),
]
