"""Accounts and devices: registration, login, token authentication, revocation, identity reset."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from veil.protocol.encoding import b64decode
from veil.protocol.errors import MalformedData
from veil.server.clock import Clock
from veil.server.errors import BadRequest, Conflict, NotFound, Unauthorized
from veil.server.hub import Hub
from veil.server.services.ratelimit import LoginLimiter
from veil.server.storage.base import AccountRow, DeviceRow, Duplicate, Store

__all__ = ["AccountService", "LoginResult", "hash_token", "new_device_id"]

log = logging.getLogger("veil.server.accounts")

TOUCH_EVERY_MS = 60_000  # last_seen is written at most once a minute per device
CLOSE_REVOKED = 4401


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_device_id() -> str:
    """10 uppercase base32 characters (50 random bits)."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii")[:10]


def check_key(value: str, what: str) -> None:
    try:
        b64decode(value, what=what, length=32)
    except MalformedData as exc:
        raise BadRequest(str(exc), "bad_key") from exc


@dataclass(frozen=True, slots=True)
class LoginResult:
    device_id: str
    token: str
    state: str


class AccountService:
    def __init__(self, store: Store, clock: Clock, hub: Hub, limiter: LoginLimiter,
                 hasher: PasswordHasher) -> None:
        self._store = store
        self._clock = clock
        self._hub = hub
        self._limiter = limiter
        self._hasher = hasher
        self._dummy_hash: str | None = None

    # Argon2 takes tens of milliseconds of CPU: run it off the event loop.
    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def register(self, handle: str, display_name: str, password: str, identity_key: str) -> None:
        check_key(identity_key, "identity_key")
        if await self._store.get_account(handle) is not None:
            raise Conflict(f"the handle {handle!r} is taken", "handle_taken")
        row = AccountRow(handle=handle, display_name=display_name, password_hash=await self._hash(password),
                         identity_key=identity_key, created_at=self._clock.now_ms())
        try:
            await self._store.create_account(row)
        except Duplicate:
            raise Conflict(f"the handle {handle!r} is taken", "handle_taken") from None
        log.info("account registered: %s", handle)

    async def _check_password(self, handle: str, password: str, address: str) -> AccountRow:
        self._limiter.check(handle, address)
        account = await self._store.get_account(handle)
        if account is None:
            # Same work as a real check, so timing does not tell which handles exist.
            if self._dummy_hash is None:
                self._dummy_hash = await self._hash(secrets.token_urlsafe(16))
            await self._verify(self._dummy_hash, password)
        if account is None or not await self._verify(account.password_hash, password):
            self._limiter.failed(handle, address)
            log.info("failed login for %s", handle)
            raise Unauthorized("wrong handle or password", "bad_credentials")
        return account

    async def login(self, handle: str, password: str, device_name: str, curve25519: str, ed25519: str,
                    address: str) -> LoginResult:
        check_key(curve25519, "curve25519")
        check_key(ed25519, "ed25519")
        await self._check_password(handle, password, address)
        now = self._clock.now_ms()
        for _ in range(5):
            token = secrets.token_urlsafe(32)
            device = DeviceRow(device_id=new_device_id(), handle=handle, name=device_name,
                               curve25519=curve25519, ed25519=ed25519, token_hash=hash_token(token),
                               state="pending", created_at=now, last_seen=now)
            try:
                await self._store.create_device(device)
            except Duplicate:
                continue  # a device id collision (or the account vanished, caught below)
            log.info("device %s logged in for %s", device.device_id, handle)
            return LoginResult(device.device_id, token, device.state)
        if await self._store.get_account(handle) is None:
            raise Unauthorized("wrong handle or password", "bad_credentials")
        raise Conflict("could not allocate a device id; try again", "device_id_collision")

    async def authenticate(self, token: str | None) -> DeviceRow:
        if not token:
            raise Unauthorized("a device token is required (Authorization: Bearer <token>)")
        device = await self._store.device_by_token(hash_token(token))
        if device is None:
            raise Unauthorized("the device token is unknown or revoked")
        now = self._clock.now_ms()
        if now - device.last_seen >= TOUCH_EVERY_MS:
            await self._store.touch_device(device.device_id, now)
        return device

    async def devices(self, handle: str) -> list[DeviceRow]:
        return await self._store.devices_of([handle])

    async def revoke(self, caller: DeviceRow, device_id: str) -> None:
        if not await self._store.delete_device(caller.handle, device_id):
            raise NotFound(f"no device {device_id!r} on your account", "unknown_device")
        self._hub.invalidate(caller.handle)  # cached active-device sets (stream send path)
        self._hub.disconnect(device_id, CLOSE_REVOKED)
        log.info("device %s of %s revoked", device_id, caller.handle)

    async def reset_identity(self, caller: DeviceRow, password: str, identity_key: str, address: str) -> None:
        check_key(identity_key, "identity_key")
        await self._check_password(caller.handle, password, address)
        revoked = await self._store.reset_identity(caller.handle, identity_key, caller.device_id)
        self._hub.invalidate(caller.handle)
        for device_id in revoked:
            self._hub.disconnect(device_id, CLOSE_REVOKED)
        log.info("identity of %s reset; %d devices revoked", caller.handle, len(revoked))
