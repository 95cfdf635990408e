"""Errors raised by the device library.

    ClientError
    ├── StoreError                the local store cannot be opened or is damaged
    │   └── WrongPassphrase       the passphrase does not open this store
    ├── NotSetUp                  the profile holds no device yet (register, log in or link first)
    ├── ServerUnavailable         the server could not be reached or did not answer usefully
    ├── ServerRejected            the server refused a request (carries status and code)
    ├── LinkFailed                linking a new device did not complete
    ├── IdentityChanged           a contact's identity key changed: sends are held until confirmed
    └── UsageError                the caller asked for something that cannot be done
"""

from __future__ import annotations

__all__ = [
    "ClientError",
    "IdentityChanged",
    "LinkFailed",
    "NotSetUp",
    "ServerRejected",
    "ServerUnavailable",
    "StoreError",
    "UsageError",
    "WrongPassphrase",
]


class ClientError(Exception):
    """Base class for every error of the device library."""


class StoreError(ClientError):
    """The local store cannot be opened or is damaged."""


class WrongPassphrase(StoreError):
    """The passphrase does not open this store."""


class NotSetUp(ClientError):
    """The profile holds no device yet."""


class ServerUnavailable(ClientError):
    """The server could not be reached."""


class ServerRejected(ClientError):
    """The server answered with an error."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, object] | None = None):
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.body = body or {}


class LinkFailed(ClientError):
    """Linking did not complete: wrong or expired code, or the other device gave up."""


class IdentityChanged(ClientError):
    """A contact's identity key changed; messages to them wait for the user's confirmation."""

    def __init__(self, handle: str):
        super().__init__(
            f"{handle}'s identity key changed (their safety number is new). Your message is held; "
            f"check with {handle}, then confirm with `veil trust {handle}` to send it."
        )
        self.handle = handle


class UsageError(ClientError):
    """The caller asked for something that cannot be done."""
