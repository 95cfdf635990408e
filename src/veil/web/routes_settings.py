"""Chat settings: secret or regular, disappearing messages, safety number, emoji verification,
block and report. Opened by tapping the contact's name in a thread."""

from __future__ import annotations

import io
from urllib.parse import quote

import segno
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from veil.client.device import Device
from veil.client.errors import ClientError
from veil.protocol.safety import format_groups
from veil.web.common import back, device_of, field, render, thread_url
from veil.web.routes_chat import view_print
from veil.web.views import TIMER_CHOICES, thread_facts

__all__ = ["routes"]


def _peer_secret(request: Request) -> tuple[str, bool]:
    return str(request.path_params["peer"]), request.query_params.get("secret") == "1"


def _settings_url(peer: str, secret: bool, note: str = "") -> str:
    url = thread_url(peer, secret, "/settings")
    return url + (("&" if "?" in url else "?") + "note=" + quote(note) if note else "")


async def _pinned(device: Device, peer: str) -> str:
    """Make sure the contact's identity key is pinned (as a first secret message would), then
    return the safety number's 12 groups, or "" when it cannot be known yet."""
    if not device.is_linked:
        return ""
    try:
        await device.directory.get(peer)
        return format_groups(device.safety_number(peer))
    except ClientError:
        return ""


async def settings(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return back("/")
    peer, secret = _peer_secret(request)
    at = view_print(request, peer=peer, secret=secret, view="facts")
    try:
        blocked = peer in await device.blocked()
    except ClientError:
        blocked = False
    facts = thread_facts(device, peer, secret=secret)
    return render(request, "settings.html", at=at, peer=peer, secret=secret, facts=facts, blocked=blocked,
                  safety=(await _pinned(device, peer)).split(), timers=TIMER_CHOICES, linked=device.is_linked,
                  note=request.query_params.get("note", ""), url=thread_url(peer, secret))


async def qr_svg(request: Request) -> Response:
    device = device_of(request)
    if device is None:
        return Response(status_code=404)
    peer, _ = _peer_secret(request)
    try:
        payload = device.verifications.qr(peer)
    except ClientError:
        return Response(status_code=404)
    out = io.BytesIO()
    segno.make(payload, error="m", micro=False, boost_error=False).save(
        out, kind="svg", scale=4, border=4, dark="black", light="white", xmldecl=False)
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


async def _act(request: Request, action: str) -> str:
    """Run one settings action; return the line to show above the settings."""
    device = device_of(request)
    assert device is not None
    peer, _ = _peer_secret(request)
    ver = device.verifications
    current = next((v for v in reversed(list(ver.active.values())) if v.peer == peer), None)
    if action == "timer":
        seconds = int(await field(request, "seconds", "0") or 0)
        await device.set_timer(peer, seconds)
        return "Disappearing messages updated."
    if action == "verify-number":
        device.mark_verified(peer, how="safety number")
        return f"{peer} is marked as verified."
    if action == "verify-start":
        await ver.start(peer)
        return f"Asked {peer} to compare emoji."
    if action in ("verify-accept", "verify-confirm", "verify-cancel"):
        if current is None:
            return "There is no emoji verification in progress."
        if action == "verify-accept":
            await current.accept()
        elif action == "verify-confirm":
            await current.confirm()
        else:
            await current.cancel()
        return ""
    if action == "block":
        await device.block(peer)
        return f"You blocked {peer}."
    if action == "unblock":
        await device.unblock(peer)
        return f"You unblocked {peer}."
    if action == "report":
        _, secret = _peer_secret(request)
        last = int(await field(request, "last", "5") or 5)
        await device.report(peer, secret=secret, last=max(1, min(last, 50)), reason=await field(request, "reason"))
        return "Thank you: the messages were reported to the server's moderators."
    return "Unknown action."


async def act(request: Request) -> Response:
    if device_of(request) is None:
        return back("/")
    peer, secret = _peer_secret(request)
    try:
        note = await _act(request, str(request.path_params["action"]))
    except (ClientError, ValueError) as exc:
        note = str(exc)
    return back(_settings_url(peer, secret, note))


routes: list[BaseRoute] = [
    Route("/t/{peer}/settings", settings),
    Route("/t/{peer}/qr.svg", qr_svg),
    Route("/t/{peer}/do/{action}", act, methods=["POST"]),
]
