"""Prometheus metrics: one `Metrics` per app (its own registry), served at GET /metrics.

Nothing here is labelled with a handle, device id or token: labels are route templates and
HTTP methods only. With `--workers N` the parent sets PROMETHEUS_MULTIPROC_DIR before the
workers start, and /metrics (answered by whichever worker) sums every worker's figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
QUEUE_DEPTH_TTL = 5.0  # seconds a queue-depth reading is reused (one COUNT per scrape at most)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages_stored = Counter("veil_messages_stored", "Secret-thread messages (send batches) committed",
                                       registry=r)
        self.envelopes_stored = Counter("veil_envelopes_stored", "Per-device envelopes committed", registry=r)
        self.envelopes_delivered = Counter("veil_envelopes_delivered", "Envelopes pushed on delivery streams",
                                           registry=r)
        self.envelopes_acked = Counter("veil_envelopes_acknowledged", "Envelopes acknowledged (deleted)",
                                       registry=r)
        self.connections = Gauge("veil_open_connections", "Open delivery streams (WebSocket)",
                                 multiprocess_mode="livesum", registry=r)
        self.queue_depth = Gauge("veil_queue_depth", "Envelopes stored and not yet acknowledged (all nodes)",
                                 multiprocess_mode="max", registry=r)
        self.redis_up = Gauge("veil_redis_up", "1 while the cross-node Redis subscription is live",
                              multiprocess_mode="min", registry=r)
        self.request_seconds = Histogram("veil_request_seconds", "HTTP request latency by route template",
                                         ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.send_commit_seconds = Histogram("veil_send_commit_seconds", "Send-batch transaction latency",
                                             buckets=_LATENCY_BUCKETS, registry=r)
        self._depth_at = 0.0

    async def render(self, queue_depth: Callable[[], Awaitable[int]]) -> bytes:
        now = time.monotonic()
        if now - self._depth_at > QUEUE_DEPTH_TTL:
            self._depth_at = now
            self.queue_depth.set(await queue_depth())
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)
