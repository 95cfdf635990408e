"""Request dependencies shared by the routers: the authenticated device and the client address."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from veil.server.services.accounts import AccountService
from veil.server.storage.base import DeviceRow

__all__ = ["AuthDep", "client_address", "make_auth"]

AuthDep = Callable[..., Awaitable[DeviceRow]]

_bearer = HTTPBearer(auto_error=False, description="the device token from POST /v1/devices")


def make_auth(accounts: AccountService) -> AuthDep:
    async def current_device(
        creds: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> DeviceRow:
        return await accounts.authenticate(creds.credentials if creds else None)

    return current_device


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
