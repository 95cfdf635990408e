from __future__ import annotations

from pathlib import Path

import pytest
import segno
from PIL import Image

from veil.client.qr import qr_png, qr_terminal
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.safety import QR_VERSION, qr_payload

_HALF = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}


def _payload() -> bytes:
    a, b = IdentityKeyPair.generate().public_bytes, IdentityKeyPair.generate().public_bytes
    return qr_payload(QR_VERSION, a, b"alice", b, b"bob", iterations=4)


@pytest.mark.parametrize("light_on_dark", [True, False])
def test_terminal_rendering_holds_every_module(light_on_dark: bool) -> None:
    payload = _payload()
    text = qr_terminal(payload, light_on_dark=light_on_dark)
    qr = segno.make(payload, error="m", micro=False, boost_error=False)
    expected = [[bool(m) for m in row] for row in qr.matrix_iter(border=2)]
    decoded: list[list[bool]] = []
    for line in text.splitlines():
        pairs = [_HALF[c] for c in line]
        decoded.append([p[0] != light_on_dark for p in pairs])
        decoded.append([p[1] != light_on_dark for p in pairs])
    assert decoded[: len(expected)] == expected
    assert all(not any(row) for row in decoded[len(expected):])  # padding is quiet zone


def test_png_is_written(tmp_path: Path) -> None:
    out = tmp_path / "qr.png"
    qr_png(_payload(), out)
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.width == im.height and im.width >= 8 * 25


def test_empty_payload_is_refused() -> None:
    with pytest.raises(ValueError):
        qr_terminal(b"")
