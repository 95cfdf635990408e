"""Who may talk to a device's web UI: only the browser tab that opened the launch URL.

Every app listens on 127.0.0.1, where any local user and any web page in the browser can reach
it. So each launch makes a random key, prints it in the URL, and trades it for an HttpOnly
cookie on first use. Cookies are not isolated by port (alice's app on :8801 and bob's on :8802
share them, and SameSite treats the two as the same site), so the cookie name carries the port,
and every request is also checked for:

- Host: 127.0.0.1:PORT or localhost:PORT only (a DNS-rebinding page carries another Host);
- Sec-Fetch-Site: a request started by another origin, even another local port, is refused;
- Origin: must be this app's own origin on anything that changes state, and on the event stream.

There is no CORS: no Access-Control-* header is ever sent, so other origins cannot read answers.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Guard", "new_key"]

_SAFE_METHODS = {"GET", "HEAD"}

_REFUSED = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Veil: refused</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
<h1>403: not allowed</h1><p>{reason}</p>
<p>Open this app with the link (with <code>?key=…</code>) that <code>veil app</code> printed when it started.</p>
</body></html>"""


def new_key() -> str:
    return secrets.token_urlsafe(24)


class Guard:
    """ASGI middleware: the launch key, the cookie, Host, Origin and Sec-Fetch-Site checks."""

    def __init__(self, app: ASGIApp, *, key: str, port: int) -> None:
        self.app = app
        self.key = key
        self.cookie = f"veil_app_{port}"
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.origins = {f"http://{h}" for h in self.hosts}

    def _refuse(self, reason: str) -> Response:
        return HTMLResponse(_REFUSED.format(reason=reason), status_code=403,
                            headers={"Cache-Control": "no-store"})

    def check(self, conn: HTTPConnection, method: str) -> Response | None:
        """None if the request may go on; otherwise the response that refuses (or redirects) it."""
        if conn.headers.get("host", "") not in self.hosts:
            return self._refuse("This app answers only at its own local address.")
        site = conn.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return self._refuse("Requests from other sites or other local apps are refused.")
        origin = conn.headers.get("origin")
        if origin is not None and origin not in self.origins:
            return self._refuse("Requests from other origins are refused.")
        if method not in _SAFE_METHODS and origin is None:
            return self._refuse("A change without an Origin header is refused.")
        cookie = conn.cookies.get(self.cookie, "")
        if cookie and secrets.compare_digest(cookie, self.key):
            return None
        given = conn.query_params.get("key", "")
        if given and method in _SAFE_METHODS and secrets.compare_digest(given, self.key):
            # Trade the key for a cookie and drop it from the address bar (and from history).
            rest = [(k, v) for k, v in conn.query_params.multi_items() if k != "key"]
            target = URL(path=conn.url.path, query=urlencode(rest))
            resp = RedirectResponse(str(target), status_code=303)
            resp.set_cookie(self.cookie, self.key, httponly=True, samesite="strict", path="/")
            return resp
        return self._refuse("This page needs the secret key from the app's launch link.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        method = str(scope.get("method", "GET"))
        refusal = self.check(conn, method)
        if refusal is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)
