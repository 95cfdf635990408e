"""A tiny TCP load balancer for the fault tests: one address in front of several server nodes,
like nginx with backup upstreams. Each new client connection goes to the first backend, in the
proxy's order, that accepts it; when that backend's process dies its connections are cut (both
sides closed), and the clients' reconnections land on the next backend by themselves.

Faults it can inject on what clients send:
- `blackhole_streams` silently drops what clients send on WebSocket streams (`GET /v1/stream`
  connections), so a device's acknowledgements never reach a server while REST requests pass;
- a request containing one of `hold` (bytes, e.g. b"GET /v1/users/carol ") is never forwarded
  and never answered: the client waits on it (`held` counts them);
- a request containing one of `cut` makes the proxy close that connection without an answer,
  as a node dying under it would (`cuts` counts them)."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["Proxy"]

_CHUNK = 64 * 1024


class Proxy:
    def __init__(self, backends: list[str]) -> None:
        self.backends: list[tuple[str, int]] = []
        for url in backends:
            parts = urlsplit(url)
            assert parts.hostname is not None and parts.port is not None, url
            self.backends.append((parts.hostname, parts.port))
        self.connections = [0] * len(backends)  # client connections forwarded, per backend
        self.streams = [0] * len(backends)  # of which WebSocket streams (GET /v1/stream)
        self.refused = 0  # backend connection attempts that failed (a dead node)
        self.blackhole_streams = False
        self.dropped = 0  # bytes from stream clients that the black hole swallowed
        self.hold: list[bytes] = []
        self.held = 0
        self.cut: list[bytes] = []
        self.cuts = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def __aenter__(self) -> Proxy:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.add(client_w)
        try:
            upstream = await self._connect()
            if upstream is None:
                return
            index, up_r, up_w = upstream
            self._writers.add(up_w)
            self.connections[index] += 1
            try:
                first = await client_r.read(_CHUNK)
                if not first:
                    return
                is_stream = first.startswith(b"GET /v1/stream")
                if is_stream:
                    self.streams[index] += 1
                if not await self._forward(first, up_w, client=True, stream=is_stream):
                    return
                tasks = [asyncio.ensure_future(self._pipe(client_r, up_w, client=True, stream=is_stream)),
                         asyncio.ensure_future(self._pipe(up_r, client_w, client=False, stream=is_stream))]
                # Either side ending (a node killed, a client gone) cuts the whole connection.
                _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            finally:
                self._writers.discard(up_w)
                up_w.close()  # what was already forwarded is still flushed
        finally:
            self._writers.discard(client_w)
            client_w.close()

    async def _connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        for i, (host, port) in enumerate(self.backends):
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            except (OSError, TimeoutError):
                self.refused += 1
                continue
            return i, r, w
        return None

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, client: bool,
                    stream: bool) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(_CHUNK):
                if not await self._forward(data, dst, client=client, stream=stream):
                    return

    async def _forward(self, data: bytes, dst: asyncio.StreamWriter, *, client: bool, stream: bool) -> bool:
        """Pass bytes on (or not); False: the connection is to be cut."""
        if client and stream and self.blackhole_streams:
            self.dropped += len(data)
            return True
        if client and any(pattern in data for pattern in self.cut):
            self.cuts += 1
            return False
        if client and any(pattern in data for pattern in self.hold):
            self.held += 1
            await self._closing.wait()  # never answered while the proxy runs
            return False
        dst.write(data)
        await dst.drain()
        return True
