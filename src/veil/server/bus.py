"""Cross-node wake-ups over Redis pub/sub.

Every node publishes what its `Hub` was told (device ids with new mail, KeysLow counts, revoked
devices) on one channel, `<prefix>:wake`, and applies what the other nodes publish to its own
streams. Nothing here carries content: only device ids and small numbers.

Redis is an accelerator, never the source of truth. Messages are fire-and-forget; when Redis is
down the publisher drops them and the subscriber reconnects with jittered back-off while each
stream keeps re-checking its mailbox on a short timer. After a reconnect every local stream is
woken once, to cover what may have been published while the subscription was gone.

Message format (text): `<node>|w|<id>,<id>...`, `<node>|k|<id>|<count>`, `<node>|d|<id>|<code>`,
`<node>|i|<handle>` (the account's devices or blocks changed: drop cached copies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["BusTarget", "RedisBus"]

log = logging.getLogger("veil.server.bus")

MAX_PENDING = 10_000  # messages held while Redis is slow; beyond that the oldest are dropped
MAX_BACKOFF = 5.0
WAKE_CHUNK = 500  # device ids per wake message


class BusTarget(Protocol):
    """What the bus drives on this node (the Hub)."""

    def apply_wake(self, device_ids: list[str]) -> None: ...
    def apply_keys_low(self, device_id: str, count: int) -> None: ...
    def apply_disconnect(self, device_id: str, code: int) -> None: ...
    def apply_invalidate(self, handle: str | None) -> None: ...
    def wake_all(self) -> None: ...


class RedisBus:
    def __init__(self, url: str, prefix: str, on_state: Callable[[int], None] | None = None) -> None:
        self.url = url
        self._on_state = on_state or (lambda _up: None)
        self.channel = f"{prefix}:wake"
        self.node = secrets.token_hex(6)
        self.up = False  # the subscription is live
        self._pending: deque[str] = deque(maxlen=MAX_PENDING)
        self._wake_ids: set[str] = set()  # coalesced: one message per flush, whatever the rate
        self._has_pending = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._target: BusTarget | None = None
        self.published = 0
        self.received = 0

    # -- publishing (called synchronously from the Hub) ----------------------------------------
    def publish_wake(self, device_ids: list[str]) -> None:
        if device_ids and len(self._wake_ids) < MAX_PENDING:
            self._wake_ids.update(device_ids)
            self._has_pending.set()

    def publish_keys_low(self, device_id: str, count: int) -> None:
        self._push(f"{self.node}|k|{device_id}|{count}")

    def publish_disconnect(self, device_id: str, code: int) -> None:
        self._push(f"{self.node}|d|{device_id}|{code}")

    def publish_invalidate(self, handle: str) -> None:
        self._push(f"{self.node}|i|{handle}")

    def _push(self, message: str) -> None:
        self._pending.append(message)
        self._has_pending.set()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, target: BusTarget) -> None:
        self._target = target
        self._tasks = [asyncio.create_task(self._publisher()), asyncio.create_task(self._subscriber())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await t
        self._tasks = []

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=None,
                                       socket_keepalive=True, health_check_interval=5)

    async def _publisher(self) -> None:
        delay = 0.1
        while True:
            client = self._client()
            try:
                while True:
                    await self._has_pending.wait()
                    self._has_pending.clear()
                    if self._wake_ids:
                        ids, self._wake_ids = sorted(self._wake_ids), set()
                        for i in range(0, len(ids), WAKE_CHUNK):
                            self._pending.append(f"{self.node}|w|{','.join(ids[i:i + WAKE_CHUNK])}")
                    while self._pending:
                        message = self._pending[0]
                        await asyncio.wait_for(client.publish(self.channel, message), 2)
                        self._pending.popleft()
                        self.published += 1
                    delay = 0.1
            except (RedisError, OSError, TimeoutError) as exc:
                # Undelivered wake-ups are dropped: the streams' re-checks cover them.
                self._pending.clear()
                self._wake_ids.clear()
                log.warning("redis publish failed (%s); retrying in %.1fs", type(exc).__name__, delay)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, MAX_BACKOFF)

    async def _subscriber(self) -> None:
        delay = 0.1
        while True:
            client = self._client()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if not self.up:
                    log.info("redis subscription to %s is live", self.channel)
                self.up = True
                self._on_state(1)
                delay = 0.1
                if self._target is not None:
                    self._target.wake_all()  # whatever was published while we were away
                while True:
                    msg = await pubsub.get_message(timeout=10.0)
                    if msg is not None and msg.get("type") == "message":
                        self._apply(msg["data"])
            except (RedisError, OSError, TimeoutError) as exc:
                if self.up:
                    log.warning("redis subscription lost (%s); streams fall back to re-checks",
                                type(exc).__name__)
                self.up = False
                self._on_state(0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, MAX_BACKOFF)

    def _apply(self, data: bytes | str) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        parts = text.split("|")
        if len(parts) < 3 or parts[0] == self.node or self._target is None:
            return
        self.received += 1
        kind = parts[1]
        try:
            if kind == "w":
                self._target.apply_wake([d for d in parts[2].split(",") if d])
            elif kind == "k" and len(parts) == 4:
                self._target.apply_keys_low(parts[2], int(parts[3]))
            elif kind == "i":
                self._target.apply_invalidate(parts[2])
            elif kind == "d" and len(parts) == 4:
                self._target.apply_disconnect(parts[2], int(parts[3]))
        except ValueError:
            log.warning("ignored a malformed bus message")
