"""Pieces every route module shares: the app's context, rendering, form fields, redirects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from veil.client.device import Device
from veil.web.session import AppState

__all__ = ["HANDLE", "Web", "back", "device_of", "field", "render", "thread_url", "web_of"]

PACKAGE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
HANDLE = re.compile(r"[a-z0-9_]{3,32}")  # the same shape the server accepts; anything else is refused early


@dataclass
class Web:
    state: AppState
    port: int
    tmp: Path  # private folder for decrypted attachments while they are being sent to the page


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def device_of(request: Request) -> Device | None:
    state = web_of(request).state
    return state.device if state.status == "ready" else None


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    state = web_of(request).state
    context.setdefault("me", state.device.handle if state.device else "")
    context.setdefault("secret", False)
    resp = templates.TemplateResponse(request, name, context, status_code=status_code)
    resp.headers["Cache-Control"] = "no-store"  # pages hold plaintext: keep them out of the disk cache
    return resp


async def field(request: Request, name: str, default: str = "") -> str:
    form = await request.form()
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default


def thread_url(peer: str, secret: bool, suffix: str = "") -> str:
    return f"/t/{quote(peer)}{suffix}" + ("?secret=1" if secret else "")


def back(url: str) -> Response:
    return RedirectResponse(url, status_code=303)
