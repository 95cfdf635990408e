"""The WebSocket protocol class uvicorn runs for each connection, trimmed for idle streams.

uvicorn's sans-I/O protocol keeps the handshake's request and response objects (every header,
parsed twice) for the life of the connection, though nothing reads them after the response is
sent. With 10,000 idle streams that was about 5 KiB each; this subclass drops them once the
handshake is done. Everything else is uvicorn's.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["LeanWebSocketProtocol"]


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def start_keepalive(self) -> None:
        # uvicorn calls this right after it wrote the 101 response: the handshake objects are done.
        super().start_keepalive()
        self.request: Any = None
        self.response: Any = None
