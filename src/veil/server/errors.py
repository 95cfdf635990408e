"""Errors the server answers with, and the handlers that render every failure the same way.

    ServerError(status, code, message)
    ├── BadRequest        400  malformed or invalid input (bad_request, bad_signature, ...)
    ├── Unauthorized      401  missing/unknown/revoked token, bad credentials
    ├── Forbidden         403  authenticated, but not allowed to touch this
    ├── NotFound          404  unknown_user, unknown_link, ...
    ├── Conflict          409  handle_taken, stale_version, device_mismatch, ...
    ├── TooLarge          413  body or item count over the limit
    ├── Unprocessable     422  well-formed JSON with wrong types or missing fields
    ├── RateLimited       429  too many failed logins (carries Retry-After)
    └── Unavailable       503  the database is unreachable

Every body is {"error": {"code", "message"}} (plus top-level extras such as `missing`/`stale`).
Unexpected exceptions become a 500 `internal` that says nothing about the cause.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "error_body",
    "install_error_handlers",
]

log = logging.getLogger("veil.server")


class ServerError(Exception):
    status = 500
    default_code = "internal"

    def __init__(self, message: str, code: str | None = None, *, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


class BadRequest(ServerError):
    status, default_code = 400, "bad_request"


class Unauthorized(ServerError):
    status, default_code = 401, "unauthorized"


class Forbidden(ServerError):
    status, default_code = 403, "forbidden"


class NotFound(ServerError):
    status, default_code = 404, "not_found"


class Conflict(ServerError):
    status, default_code = 409, "conflict"


class TooLarge(ServerError):
    status, default_code = 413, "too_large"


class Unprocessable(ServerError):
    status, default_code = 422, "invalid_request"


class RateLimited(ServerError):
    status, default_code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class Unavailable(ServerError):
    status, default_code = 503, "unavailable"


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, **extra}


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "envelopes", 0, "body") -> "envelopes[0].body"; the "body"/"query" prefix is noise.
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in ("body", "query", "path", "header") else ""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or where or "request"


def validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    """(status, code, message) for a FastAPI validation failure, naming the first bad field."""
    errors = list(exc.errors())
    if not errors:
        return 422, "invalid_request", "the request is not valid"
    first = errors[0]
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return 400, "malformed_json", "the request body is not valid JSON"
    loc = first.get("loc", ())
    if kind == "model_attributes_type" or (kind == "dict_type" and list(loc) == ["body"]):
        return 400, "malformed_json", "the request body must be a JSON object"
    name = _field_name(loc)
    msg = str(first.get("msg", "is not valid"))
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return 422, "invalid_request", f"{name}: {msg}{more}"


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServerError)
    return JSONResponse(error_body(exc.code, exc.message, **exc.extra), status_code=exc.status,
                        headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, code, message = validation_message(exc)
    return JSONResponse(error_body(code, message), status_code=status)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "too_large"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "the request was refused"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such route: {request.method} {request.url.path}"
    return JSONResponse(error_body(code, message), status_code=exc.status_code,
                        headers=dict(exc.headers or {}))


async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return JSONResponse(error_body("unavailable", "the database is unavailable; try again shortly"),
                        status_code=503, headers={"Retry-After": "5"})


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    # A connection the database dropped (pg_terminate_backend, restart) surfaces as a DBAPIError
    # with connection_invalidated; the pool replaces it (pool_pre_ping), so the client may retry.
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return await _db_unavailable(request, exc)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log (no request bodies in it); the peer learns nothing.
    # Only frame locations are logged: exception text (e.g. SQL parameters) may hold secrets.
    where = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)[-5:]))
    log.error("unhandled %s on %s %s\n%s", type(exc).__name__, request.method, request.url.path, where)
    return JSONResponse(error_body("internal", "the server failed; try again later"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServerError, _server_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _db_unavailable)
    app.add_exception_handler(InterfaceError, _db_unavailable)
    app.add_exception_handler(DBAPIError, _dbapi_error)
    app.add_exception_handler(Exception, _unexpected)
