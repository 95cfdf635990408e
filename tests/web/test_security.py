"""The guard in front of every app: launch key → cookie, and Host / Origin / Sec-Fetch-Site checks."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from veil.web.security import Guard

PORT = 5555
BASE = f"http://127.0.0.1:{PORT}"
KEY = "launch-key-for-tests"


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/", ok, methods=["GET", "POST"]), Route("/events", ok)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=Guard(app, key=KEY, port=PORT)), base_url=BASE,
                             follow_redirects=False)


async def test_key_is_traded_for_a_cookie_and_dropped_from_the_url() -> None:
    c = client()
    assert (await c.get("/")).status_code == 403
    assert (await c.get("/?key=wrong")).status_code == 403
    r = await c.get("/?key=" + KEY + "&x=1")
    assert r.status_code == 303 and r.headers["location"] == "/?x=1"
    cookie = r.headers["set-cookie"]
    assert f"veil_app_{PORT}={KEY}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert (await c.get("/")).text == "ok"  # the client kept the cookie
    assert "access-control-allow-origin" not in {k.lower() for k in (await c.get("/")).headers}


async def test_other_ports_cookie_does_not_open_this_app() -> None:
    c = client()
    c.cookies.set(f"veil_app_{PORT + 1}", KEY)
    assert (await c.get("/")).status_code == 403


async def test_host_origin_and_fetch_site_are_checked() -> None:
    c = client()
    c.cookies.set(f"veil_app_{PORT}", KEY)
    assert (await c.get("/", headers={"Host": "evil.example"})).status_code == 403
    assert (await c.get("/", headers={"Host": f"localhost:{PORT}"})).status_code == 200
    assert (await c.post("/")).status_code == 403  # a change without Origin
    assert (await c.post("/", headers={"Origin": "http://127.0.0.1:5556"})).status_code == 403
    assert (await c.post("/", headers={"Origin": BASE})).status_code == 200
    assert (await c.get("/events", headers={"Origin": "http://evil.example"})).status_code == 403
    assert (await c.get("/", headers={"Sec-Fetch-Site": "same-site"})).status_code == 403
    assert (await c.get("/", headers={"Sec-Fetch-Site": "cross-site"})).status_code == 403
    assert (await c.get("/", headers={"Sec-Fetch-Site": "same-origin"})).status_code == 200
    assert (await c.post("/?key=" + KEY, headers={"Origin": BASE})).status_code == 200  # the cookie decides
