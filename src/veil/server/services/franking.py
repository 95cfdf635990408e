"""The server's half of message franking: its key (shared by every node through the database)
and the tag it puts on each secret envelope. The crypto is `veil.protocol.franking`."""

from __future__ import annotations

from veil.protocol.franking import server_tag
from veil.protocol.keys import random_bytes
from veil.server.storage.base import Store

__all__ = ["FRANKING_SECRET", "Franker"]

FRANKING_SECRET = "franking_key"
KEY_SIZE = 32


class Franker:
    """Loads the franking key once (made on first use) and tags envelopes with one HMAC each."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._key: bytes | None = None

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await self._store.server_secret(FRANKING_SECRET, random_bytes(KEY_SIZE))
        return self._key

    @staticmethod
    def tag(key: bytes, commitment: bytes, sender: str, sender_device: str, recipient: str,
            recipient_device: str, server_ts: int) -> bytes:
        return server_tag(key, commitment, sender, sender_device, recipient, recipient_device, server_ts)
