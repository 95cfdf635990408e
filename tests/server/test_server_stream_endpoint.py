"""The stream endpoint's refusals, driven through its raw ASGI interface: a bad token closes with
4401 and the database being unreachable with 1013 (try again later), never a crash or a 500."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.exc import OperationalError

from veil.server.errors import Unauthorized
from veil.server.hub import Hub
from veil.server.routes.stream import CLOSE_TRY_AGAIN, CLOSE_UNAUTHORIZED, StreamEndpoint
from veil.server.services.accounts import AccountService
from veil.server.services.keys import KeyService
from veil.server.services.mailbox import MailboxService


class _Accounts:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.tokens: list[str | None] = []

    async def authenticate(self, token: str | None) -> object:
        self.tokens.append(token)
        raise self.error


async def _drive(error: Exception, headers: list[tuple[bytes, bytes]]) -> tuple[list[dict[str, Any]], _Accounts]:
    accounts = _Accounts(error)
    endpoint = StreamEndpoint(cast(AccountService, accounts), cast(MailboxService, None),
                              cast(KeyService, None), Hub())
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "websocket", "path": "/v1/stream", "headers": headers}
    await endpoint(scope, receive, send)
    return sent, accounts


async def test_a_bad_token_closes_with_4401_and_says_why() -> None:
    sent, accounts = await _drive(Unauthorized("the device token is unknown or revoked"),
                                  [(b"authorization", b"Bearer abc123")])
    assert accounts.tokens == ["abc123"]
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == CLOSE_UNAUTHORIZED and "revoked" in sent[1]["reason"]


async def test_no_bearer_header_reaches_authenticate_as_none() -> None:
    _sent, accounts = await _drive(Unauthorized("a device token is required"), [(b"authorization", b"Basic x")])
    assert accounts.tokens == [None]


async def test_an_unreachable_database_closes_with_1013_so_the_client_retries() -> None:
    error = OperationalError("SELECT 1", {}, Exception("connection refused"))
    sent, _ = await _drive(error, [(b"authorization", b"Bearer abc123")])
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == CLOSE_TRY_AGAIN
    assert "connection refused" not in sent[1]["reason"]  # no internals in the reason
