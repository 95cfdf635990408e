"""Render QR codes (safety numbers, link codes) for a terminal or as a PNG file, with segno.

The payload is bytes (see `veil.protocol.safety.qr_payload`), encoded in byte mode with
error-correction level M and no micro QR, so any phone camera can read it.
"""

from __future__ import annotations

import os

import segno

__all__ = ["qr_png", "qr_terminal"]

_BORDER = 2  # quiet zone in modules; the spec asks for 4, but terminals usually add padding


def _make(payload: bytes) -> segno.QRCode:
    if not payload:
        raise ValueError("nothing to encode")
    return segno.make(payload, error="m", micro=False, boost_error=False)


def qr_terminal(payload: bytes, *, light_on_dark: bool = True) -> str:
    """The QR code as lines of Unicode half blocks: one character cell holds two modules.

    Most terminals draw light text on a dark background, so by default the *light* modules
    (and the quiet zone) are drawn, which gives the dark-on-light picture cameras expect.
    Pass `light_on_dark=False` for a terminal with dark text on a light background.
    """
    rows = [list(r) for r in _make(payload).matrix_iter(scale=1, border=_BORDER)]
    ink = [[(bool(m) != light_on_dark) for m in row] for row in rows]
    if len(ink) % 2:
        ink.append([light_on_dark] * len(ink[0]))  # one more row of quiet zone
    lines = []
    for top, bottom in zip(ink[0::2], ink[1::2], strict=True):
        lines.append("".join(
            "█" if t and b else "▀" if t else "▄" if b else " " for t, b in zip(top, bottom, strict=True)
        ))
    return "\n".join(lines)


def qr_png(payload: bytes, path: str | os.PathLike[str], *, scale: int = 8) -> None:
    """Write the QR code as a black-on-white PNG with the full 4-module quiet zone."""
    _make(payload).save(os.fspath(path), kind="png", scale=scale, border=4, dark="black", light="white")
