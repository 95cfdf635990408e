"""The trimmed uvicorn WebSocket protocol: it hooks a method uvicorn really calls once the
handshake is sent, and the server runs it (the stream tests then exercise it end to end)."""

from __future__ import annotations

import inspect

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from veil.server.config import ServerConfig
from veil.server.run import _uvicorn_options
from veil.server.wsproto import LeanWebSocketProtocol


def test_the_hook_is_called_right_after_the_handshake_response() -> None:
    # If uvicorn renames or moves this call, the override would silently stop saving memory.
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    response = send.index("self.conn.send_response(self.response)")
    assert "self.start_keepalive()" in send[response:response + 300]
    assert "self.response" not in send[send.index("self.start_keepalive()"):]


def test_the_server_runs_the_lean_protocol() -> None:
    assert _uvicorn_options(ServerConfig())["ws"] is LeanWebSocketProtocol
