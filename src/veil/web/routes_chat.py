"""The inbox, a thread, composing, attachments, stickers and the live event stream."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from veil.client import attachments, stickers
from veil.client.device import Device
from veil.client.errors import ClientError, ServerRejected
from veil.web.common import HANDLE, back, device_of, field, render, thread_url, web_of
from veil.web.views import fingerprint, inbox_rows, message_rows, thread_facts, timer_label

__all__ = ["routes"]

log = logging.getLogger("veil.web")
_PACK = stickers.load_pack()
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _peer_secret(request: Request) -> tuple[str, bool]:
    return str(request.path_params["peer"]), request.query_params.get("secret") == "1"


def _answer(request: Request, error: str = "", **extra: Any) -> Response:
    """Scripts (fetch) get JSON; a plain form post goes back to the thread."""
    if request.headers.get("x-veil") == "fetch":
        return JSONResponse({"ok": not error, "error": error, **extra}, status_code=400 if error else 200)
    peer, secret = _peer_secret(request)
    return back(thread_url(peer, secret))


# -- inbox --------------------------------------------------------------------------------------
async def inbox(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    at = view_print(request)
    incoming = [v.peer for v in device.verifications.incoming()]
    return render(request, "inbox.html", at=at, threads=inbox_rows(device), linked=device.is_linked, incoming=incoming,
                  error=request.query_params.get("error", ""))


async def new_thread(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer = (await field(request, "handle")).lower().lstrip("@")
    secret = await field(request, "secret") == "1"
    error = ""
    if not HANDLE.fullmatch(peer) or peer == device.handle:
        error = "Enter someone else's username."
    else:
        try:
            await device.api.user(peer)
        except ServerRejected:
            error = f"There is no one called {peer} on this server."
        except ClientError as exc:
            error = str(exc)
    if error:  # back to a GET page: the inbox reloads itself on updates, which must not re-post
        return back("/inbox?error=" + quote(error))
    return back(thread_url(peer, secret))


# -- a thread -----------------------------------------------------------------------------------
async def _seen(device: Device, peer: str, secret: bool) -> None:
    """The thread is on screen: start countdowns, send receipts (a failure only delays receipts)."""
    try:
        await device.mark_read(peer, secret=secret)
    except ClientError as exc:
        log.info("read receipt not sent: %s", exc)


def _thread_context(device: Device, peer: str, secret: bool) -> dict[str, Any]:
    facts = thread_facts(device, peer, secret=secret)
    return {"peer": peer, "secret": secret, "rows": message_rows(device, peer, secret=secret), "facts": facts,
            "timer_label": timer_label(facts["timer"]) if facts["timer"] else "", "now": device.clock(),
            "linked": device.is_linked, "url": thread_url(peer, secret)}


async def thread(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer, secret = _peer_secret(request)
    if not HANDLE.fullmatch(peer):
        return back("/inbox")
    if secret and not device.is_linked:
        return back("/inbox?error=" + quote("This device is not linked yet, so it cannot open secret conversations."))
    await _seen(device, peer, secret)
    at = view_print(request, peer=peer, secret=secret)
    return render(request, "thread.html", at=at, stickers=_PACK.stickers, **_thread_context(device, peer, secret))


async def thread_part(request: Request) -> Response:
    """The live part of a thread (header facts, lines, typing), fetched again on each change."""
    device = device_of(request)
    if device is None:
        return Response(status_code=409)
    peer, secret = _peer_secret(request)
    if request.query_params.get("seen") == "1":
        await _seen(device, peer, secret)
    return render(request, "thread_part.html", **_thread_context(device, peer, secret))


async def _attempt(request: Request, step: Any) -> Response:
    try:
        await step
    except ClientError as exc:
        return _answer(request, str(exc))
    return _answer(request)


async def send_text(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer, secret = _peer_secret(request)
    text = await field(request, "text")
    if not text:
        return _answer(request, "Type a message first.")
    return await _attempt(request, device.send_text(peer, text, secret=secret))


async def send_media(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer, secret = _peer_secret(request)
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _answer(request, "Choose a photo or a video.")
    # A folder of its own keeps the sender's file name (send_media shows it) without clashes.
    folder = web_of(request).tmp / secrets.token_hex(8)
    folder.mkdir(mode=0o700)
    name = _SAFE_NAME.sub("_", upload.filename.rsplit("/", 1)[-1]).strip("._") or "upload"
    path = folder / name
    try:
        with path.open("wb") as out:
            while chunk := await upload.read(1024 * 1024):
                out.write(chunk)
        return await _attempt(request, device.send_media(peer, path, secret=secret))
    finally:
        await upload.close()
        shutil.rmtree(folder, ignore_errors=True)


async def send_sticker(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer, secret = _peer_secret(request)
    return await _attempt(request, device.send_sticker(peer, await field(request, "sticker"), secret=secret))


async def unsend(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer, secret = _peer_secret(request)
    return await _attempt(request, device.unsend(peer, await field(request, "id"), secret=secret))


async def typing(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer, secret = _peer_secret(request)
    return await _attempt(request, device.send_typing(peer, secret=secret))


async def screenshot(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer, _ = _peer_secret(request)
    return await _attempt(request, device.notify_screenshot(peer))


# -- attachments and stickers -------------------------------------------------------------------
async def media(request: Request) -> Response:
    """Decrypt one attachment for the page; the plaintext file lives only until it is sent."""
    device = device_of(request)
    if device is None:
        return Response(status_code=404)
    record = device.store.get_message(str(request.path_params["mid"]))
    att = (record or {}).get("attachment") or {}
    if not att.get("file"):
        return Response(status_code=404)
    src = device.profile / "attachments" / str(att["file"])
    dest = web_of(request).tmp / secrets.token_hex(16)
    try:
        await asyncio.to_thread(attachments.open_file, src, dest, bytes(att["key"]))
    except ClientError:
        return Response(status_code=410)
    return FileResponse(dest, media_type=str(att.get("mime") or "application/octet-stream"),
                        headers={"Cache-Control": "no-store"},
                        background=BackgroundTask(dest.unlink, missing_ok=True))


async def sticker(request: Request) -> Response:
    try:
        path = stickers.sticker_path(_PACK, str(request.path_params["sid"]))
    except stickers.UnknownSticker:
        return Response(status_code=404)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "max-age=86400"})


# -- live updates -------------------------------------------------------------------------------
def view_print(request: Request, *, peer: str = "", secret: bool = False, view: str = "") -> str:
    """A fingerprint of what one page shows; the page's event stream refreshes it when this changes."""
    state = web_of(request).state
    device = state.device if state.status == "ready" else None
    link = state.link
    base = (state.status, state.error, link.result if link else "", link.error if link else "")
    if device is None:
        return fingerprint(base)
    if not peer:
        return fingerprint(base, inbox_rows(device), [v.peer for v in device.verifications.incoming()])
    if view == "facts":  # settings: reload for verification steps only
        return fingerprint(base, thread_facts(device, peer, secret=secret))
    rows = [(r["id"], r["status"], r["expires_at"], r["seen"]) for r in message_rows(device, peer, secret=secret)]
    return fingerprint(base, rows, thread_facts(device, peer, secret=secret))


def _view_print(request: Request) -> str:
    q = request.query_params
    return view_print(request, peer=q.get("peer", ""), secret=q.get("secret") == "1", view=q.get("view", ""))


async def events(request: Request) -> Response:
    """Server-sent events: "refresh" whenever what this page shows has changed."""
    state = web_of(request).state

    async def stream() -> AsyncIterator[str]:
        # Start from what the page was rendered with: a change between its render and this
        # connection is sent at once instead of being missed.
        last = request.query_params.get("at") or _view_print(request)
        idle = 0
        yield "retry: 1000\n\n"
        while not state.stopping:
            await state.changed(1.0)
            if await request.is_disconnected():
                return
            now = _view_print(request)
            if now != last:
                last, idle = now, 0
                yield "data: refresh\n\n"
            else:
                idle += 1
                if idle % 15 == 0:
                    yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


routes: list[BaseRoute] = [
    Route("/inbox", inbox),
    Route("/inbox/new", new_thread, methods=["POST"]),
    Route("/t/{peer}", thread),
    Route("/t/{peer}/part", thread_part),
    Route("/t/{peer}/send", send_text, methods=["POST"]),
    Route("/t/{peer}/media", send_media, methods=["POST"]),
    Route("/t/{peer}/sticker", send_sticker, methods=["POST"]),
    Route("/t/{peer}/unsend", unsend, methods=["POST"]),
    Route("/t/{peer}/typing", typing, methods=["POST"]),
    Route("/t/{peer}/screenshot", screenshot, methods=["POST"]),
    Route("/media/{mid}", media),
    Route("/stickers/{sid}.png", sticker),
    Route("/events", events),
]
