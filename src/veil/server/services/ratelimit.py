"""Sliding-window counters of failed logins, per handle and per client address (in memory).

A single process is the unit that counts; several nodes would each count on their own, which
still bounds guessing to nodes × limit per window.
"""

from __future__ import annotations

from collections import deque

from veil.server.clock import Clock
from veil.server.errors import RateLimited

__all__ = ["LoginLimiter", "SlidingWindow"]

_MAX_KEYS = 100_000  # beyond this, stale keys are swept before adding another


class SlidingWindow:
    def __init__(self, limit: int, window_ms: int, clock: Clock) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._clock = clock
        self._hits: dict[str, deque[int]] = {}

    def _prune(self, key: str, now: int) -> deque[int] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window_ms:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def retry_after_ms(self, key: str) -> int:
        """0 if another attempt is allowed now, else milliseconds until one is."""
        now = self._clock.now_ms()
        hits = self._prune(key, now)
        if hits is None or len(hits) < self.limit:
            return 0
        return hits[len(hits) - self.limit] + self.window_ms - now

    def hit(self, key: str) -> None:
        now = self._clock.now_ms()
        if len(self._hits) >= _MAX_KEYS:
            for k in list(self._hits):
                self._prune(k, now)
        self._hits.setdefault(key, deque()).append(now)


class LoginLimiter:
    """5 failures per minute per handle and per address (configurable) → 429 with Retry-After."""

    def __init__(self, clock: Clock, *, per_handle: int, per_address: int, window_s: int) -> None:
        self._handles = SlidingWindow(per_handle, window_s * 1000, clock)
        self._addresses = SlidingWindow(per_address, window_s * 1000, clock)

    def check(self, handle: str, address: str) -> None:
        wait_ms = max(self._handles.retry_after_ms(handle), self._addresses.retry_after_ms(address))
        if wait_ms > 0:
            raise RateLimited("too many failed logins; wait and try again", retry_after=-(-wait_ms // 1000))

    def failed(self, handle: str, address: str) -> None:
        self._handles.hit(handle)
        self._addresses.hit(address)
