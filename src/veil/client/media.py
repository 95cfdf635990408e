"""Inspect photos and videos before sending them: type, size, duration and a small thumbnail.

No ffmpeg: images go through Pillow, and for video we read just the container headers
ourselves (MP4 `moov/mvhd` and `trak/tkhd`, WebM's EBML `Segment/Info` and `Tracks`). The
type always comes from the file's first bytes, never its name, and Pillow is told which
decoder to use, so a `.jpg` that is really something else is refused rather than guessed.

The parsers read untrusted files (a contact's attachment is probed too), so every length is
checked against what is left before it is used; anything odd raises `UnsupportedMedia`,
never IndexError or struct.error. They read only headers: the MP4 `mdat` and WebM clusters
are skipped by seeking, and the metadata read into memory is capped (`_MAX_META`).

Video thumbnails are a generated placeholder (a dark tile with a play triangle in the
video's aspect ratio): there is no decoder here to take a real frame.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from PIL import Image, ImageDraw, ImageOps

from veil.client.errors import ClientError

__all__ = ["THUMBNAIL_MAX", "MediaInfo", "UnsupportedMedia", "probe", "probe_file", "sniff", "thumbnail"]

THUMBNAIL_MAX = 96
_MAX_META = 16 * 1024 * 1024  # the most header bytes (moov, Info, Tracks) read into memory
_MAX_SIDE = 65535

_IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}


class UnsupportedMedia(ClientError):
    """The file is not a photo or video Veil can inspect (or it is damaged)."""


@dataclass(frozen=True, slots=True)
class MediaInfo:
    mime: str
    kind: Literal["image", "video"]
    width: int
    height: int
    duration_ms: int | None = None  # videos only; None when the container does not say


def sniff(head: bytes) -> str | None:
    """The MIME type a file's first 16+ bytes announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"  # confirmed (or corrected to Matroska) from the EBML DocType
    return None


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Inspect a file on disk."""
    try:
        with open(path, "rb") as fh:
            return probe_file(fh)
    except OSError as exc:
        raise UnsupportedMedia(f"cannot read {os.fspath(path)!r}") from exc


def probe_file(fh: BinaryIO) -> MediaInfo:
    """Inspect an open, seekable binary file."""
    fh.seek(0)
    mime = sniff(fh.read(16))
    if mime is None:
        raise UnsupportedMedia("not a JPEG, PNG, GIF, WebP, MP4 or WebM file")
    fh.seek(0)
    if mime in _IMAGE_FORMATS:
        return _probe_image(fh, mime)
    if mime.startswith("video/") and mime != "video/webm":
        return _probe_mp4(fh, mime)
    return _probe_webm(fh)


# --- images -----------------------------------------------------------------------------------

def _open_image(fh: BinaryIO, mime: str) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(fh, formats=[_IMAGE_FORMATS[mime]])
        except Exception as exc:  # includes the bomb warning, raised as an error above
            raise UnsupportedMedia(f"damaged or oversized {mime} image") from exc


def _probe_image(fh: BinaryIO, mime: str) -> MediaInfo:
    with _open_image(fh, mime) as im:
        width, height = im.size
        try:
            orientation = int(im.getexif().get(0x0112, 1))
        except Exception:  # a broken EXIF block does not make the picture unusable
            orientation = 1
    if orientation in (5, 6, 7, 8):  # rotated 90°: report the size as it will be shown
        width, height = height, width
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise UnsupportedMedia("image dimensions out of range")
    return MediaInfo(mime=mime, kind="image", width=width, height=height)


# --- MP4 / QuickTime (ISO BMFF) -----------------------------------------------------------------

def _read_exact(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise UnsupportedMedia("file ends early")
    return data


def _file_size(fh: BinaryIO) -> int:
    fh.seek(0, io.SEEK_END)
    return fh.tell()


def _box_dims(head: bytes, available: int) -> tuple[bytes, int, int]:
    """(type, header length, box size) from a box's first ≤16 bytes and the bytes left after it."""
    if available < 8 or len(head) < 8:
        raise UnsupportedMedia("truncated MP4 box")
    size, kind = struct.unpack_from(">I4s", head)
    header = 8
    if size == 1:
        if available < 16 or len(head) < 16:
            raise UnsupportedMedia("truncated MP4 box")
        (size,) = struct.unpack_from(">Q", head, 8)
        header = 16
    elif size == 0:  # "extends to the end of the enclosing container"
        size = available
    if size < header or size > available:
        raise UnsupportedMedia("malformed MP4 box size")
    return kind, header, size


def _box_header(buf: bytes, pos: int, end: int) -> tuple[bytes, int, int]:
    """(type, payload start, box end) of the box at `pos` inside buf[:end]."""
    kind, header, size = _box_dims(buf[pos:pos + 16], end - pos)
    return kind, pos + header, pos + size


def _boxes(buf: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    pos = start
    while end - pos >= 8:
        kind, payload, box_end = _box_header(buf, pos, end)
        yield kind, payload, box_end
        pos = box_end


def _child(buf: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in _boxes(buf, start, end):
        if k == kind:
            return s, e
    return None


def _probe_mp4(fh: BinaryIO, mime: str) -> MediaInfo:
    size = _file_size(fh)
    pos, moov = 0, b""
    while size - pos >= 8:  # walk the top level by seeking, so `mdat` is never read
        fh.seek(pos)
        kind, header, box_size = _box_dims(fh.read(16), size - pos)
        if kind == b"moov":
            if box_size > _MAX_META:
                raise UnsupportedMedia("MP4 metadata too large")
            fh.seek(pos + header)
            moov = _read_exact(fh, box_size - header)
            break
        pos += box_size
    if not moov:
        raise UnsupportedMedia("MP4 without a movie header (moov)")
    return _parse_moov(moov, mime)


def _parse_moov(moov: bytes, mime: str) -> MediaInfo:
    duration_ms: int | None = None
    width = height = 0
    for kind, s, e in _boxes(moov, 0, len(moov)):
        if kind == b"mvhd":
            duration_ms = _parse_mvhd(moov[s:e])
        elif kind == b"trak":
            w, h, is_video = _parse_trak(moov, s, e)
            if w and h and (is_video or not width):
                width, height = w, h
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise UnsupportedMedia("MP4 without a video track")
    return MediaInfo(mime=mime, kind="video", width=width, height=height, duration_ms=duration_ms)


def _parse_mvhd(p: bytes) -> int | None:
    if len(p) >= 32 and p[0] == 1:
        timescale, duration = struct.unpack_from(">IQ", p, 20)
        unknown = duration == 2**64 - 1
    elif len(p) >= 20 and p[0] == 0:
        timescale, duration = struct.unpack_from(">II", p, 12)
        unknown = duration == 2**32 - 1
    else:
        raise UnsupportedMedia("malformed MP4 movie header")
    if timescale == 0:
        raise UnsupportedMedia("MP4 movie header without a timescale")
    return None if unknown or duration == 0 else duration * 1000 // timescale


def _parse_trak(buf: bytes, start: int, end: int) -> tuple[int, int, bool]:
    width = height = 0
    tkhd = _child(buf, start, end, b"tkhd")
    if tkhd is not None:
        p = buf[tkhd[0]:tkhd[1]]
        offset = {0: 76, 1: 88}.get(p[0] if p else -1)
        if offset is None or len(p) < offset + 8:
            raise UnsupportedMedia("malformed MP4 track header")
        w, h = struct.unpack_from(">II", p, offset)
        width, height = w >> 16, h >> 16  # 16.16 fixed point
    is_video = False
    mdia = _child(buf, start, end, b"mdia")
    if mdia is not None:
        hdlr = _child(buf, mdia[0], mdia[1], b"hdlr")
        # hdlr payload: version/flags (4), pre_defined (4), handler_type (4)
        is_video = hdlr is not None and hdlr[1] - hdlr[0] >= 12 and buf[hdlr[0] + 8:hdlr[0] + 12] == b"vide"
    return width, height, is_video


# --- WebM / Matroska (EBML) ---------------------------------------------------------------------

_EBML, _DOCTYPE = 0x1A45DFA3, 0x4282
_SEGMENT, _INFO, _TRACKS, _CLUSTER = 0x18538067, 0x1549A966, 0x1654AE6B, 0x1F43B675
_TIMECODE_SCALE, _DURATION = 0x2AD7B1, 0x4489
_TRACK_ENTRY, _TRACK_TYPE, _VIDEO, _PIXEL_WIDTH, _PIXEL_HEIGHT = 0xAE, 0x83, 0xE0, 0xB0, 0xBA


def _vint(buf: bytes, pos: int, end: int, *, max_len: int, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, length, all data bits set) of the EBML variable-length integer at `pos`."""
    if pos >= end:
        raise UnsupportedMedia("truncated EBML element")
    first = buf[pos]
    length = 9 - first.bit_length()  # leading zeros + 1; first == 0 gives 9
    if length > max_len or end - pos < length:
        raise UnsupportedMedia("malformed EBML number")
    value = first if keep_marker else first & (0xFF >> length)
    for b in buf[pos + 1:pos + length]:
        value = (value << 8) | b
    all_ones = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, all_ones


def _element(buf: bytes, pos: int, end: int) -> tuple[int, int, int | None]:
    """(id, data start, data size or None when unknown) of the EBML element at `pos`."""
    eid, n, _ = _vint(buf, pos, end, max_len=4, keep_marker=True)
    size, m, unknown = _vint(buf, pos + n, end, max_len=8, keep_marker=False)
    return eid, pos + n + m, None if unknown else size


def _elements(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    pos = start
    while pos < end:
        eid, data, size = _element(buf, pos, end)
        if size is None or size > end - data:
            raise UnsupportedMedia("malformed EBML element size")
        yield eid, data, data + size
        pos = data + size


def _uint(buf: bytes, s: int, e: int) -> int:
    if e - s > 8:
        raise UnsupportedMedia("malformed EBML integer")
    return int.from_bytes(buf[s:e], "big")


def _float(buf: bytes, s: int, e: int) -> float:
    if e - s == 4:
        return float(struct.unpack_from(">f", buf, s)[0])
    if e - s == 8:
        return float(struct.unpack_from(">d", buf, s)[0])
    if e == s:
        return 0.0
    raise UnsupportedMedia("malformed EBML float")


def _read_element_at(fh: BinaryIO, pos: int, limit: int) -> tuple[int, int, int | None]:
    fh.seek(pos)
    head = fh.read(12)
    eid, data, size = _element(head, 0, len(head))
    if size is not None and size > limit - pos - data:
        raise UnsupportedMedia("EBML element runs past the end of the file")
    return eid, pos + data, size


def _probe_webm(fh: BinaryIO) -> MediaInfo:
    file_end = _file_size(fh)
    eid, data, size = _read_element_at(fh, 0, file_end)
    if eid != _EBML or size is None or size > 4096:
        raise UnsupportedMedia("malformed EBML header")
    fh.seek(data)
    header = _read_exact(fh, size)
    doctype = next((header[s:e] for i, s, e in _elements(header, 0, size) if i == _DOCTYPE), b"")
    mime = {b"webm": "video/webm", b"matroska": "video/x-matroska"}.get(doctype.rstrip(b"\0"))
    if mime is None:
        raise UnsupportedMedia("EBML file that is neither WebM nor Matroska")
    pos = data + size
    while pos < file_end:  # top level: find the Segment (Void/CRC elements may come first)
        eid, data, size = _read_element_at(fh, pos, file_end)
        if eid == _SEGMENT:
            return _probe_segment(fh, mime, data, file_end if size is None else data + size)
        if size is None:
            break
        pos = data + size
    raise UnsupportedMedia("WebM without a Segment")


def _probe_segment(fh: BinaryIO, mime: str, pos: int, end: int) -> MediaInfo:
    scale, duration, width, height = 1_000_000, None, 0, 0
    seen_tracks = False
    while pos < end and not (seen_tracks and duration is not None):
        eid, data, size = _read_element_at(fh, pos, end)
        if size is None or (eid == _CLUSTER and seen_tracks):
            break  # media data (or a live stream of unknown length): the headers are behind us
        if eid in (_INFO, _TRACKS):
            if size > _MAX_META:
                raise UnsupportedMedia("WebM metadata too large")
            fh.seek(data)
            body = _read_exact(fh, size)
            if eid == _INFO:
                for i, s, e in _elements(body, 0, size):
                    if i == _TIMECODE_SCALE:
                        scale = _uint(body, s, e) or 1_000_000
                    elif i == _DURATION:
                        duration = _float(body, s, e)
            else:
                seen_tracks = True
                width, height = _webm_video_size(body)
        pos = data + size
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise UnsupportedMedia("WebM without a video track")
    duration_ms = None
    if duration is not None and math.isfinite(duration) and duration > 0:
        duration_ms = int(duration * scale / 1_000_000)
    return MediaInfo(mime=mime, kind="video", width=width, height=height, duration_ms=duration_ms)


def _webm_video_size(tracks: bytes) -> tuple[int, int]:
    for eid, s, e in _elements(tracks, 0, len(tracks)):
        if eid != _TRACK_ENTRY:
            continue
        kind, w, h = 0, 0, 0
        for i, cs, ce in _elements(tracks, s, e):
            if i == _TRACK_TYPE:
                kind = _uint(tracks, cs, ce)
            elif i == _VIDEO:
                for j, vs, ve in _elements(tracks, cs, ce):
                    if j == _PIXEL_WIDTH:
                        w = _uint(tracks, vs, ve)
                    elif j == _PIXEL_HEIGHT:
                        h = _uint(tracks, vs, ve)
        if kind == 1 and w and h:
            return w, h
    return 0, 0


# --- thumbnails ---------------------------------------------------------------------------------

def _fit(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, THUMBNAIL_MAX / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail(path: str | os.PathLike[str], info: MediaInfo) -> bytes:
    """A small JPEG (long side ≤ 96 px): the picture itself, or a play-button tile for videos."""
    if info.kind == "video":
        size = _fit(info.width, info.height)
        tile = Image.new("RGB", size, (32, 36, 40))
        w, h = size
        r = max(2, min(w, h) // 4)
        cx, cy = w / 2, h / 2
        ImageDraw.Draw(tile).polygon([(cx - r * 0.6, cy - r), (cx - r * 0.6, cy + r), (cx + r, cy)],
                                     fill=(235, 235, 235))
        return _jpeg(tile)
    try:
        with open(path, "rb") as fh, _open_image(fh, info.mime) as im:
            im.draft("RGB", (THUMBNAIL_MAX * 2, THUMBNAIL_MAX * 2))  # JPEG: decode at a smaller scale
            shown = ImageOps.exif_transpose(im)
            shown.thumbnail((THUMBNAIL_MAX, THUMBNAIL_MAX))
            if shown.mode in ("RGBA", "LA", "P", "PA"):  # flatten transparency onto white
                rgba = shown.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                shown = flat
            return _jpeg(shown.convert("RGB"))
    except UnsupportedMedia:
        raise
    except Exception as exc:
        raise UnsupportedMedia("the image could not be decoded") from exc


def _jpeg(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=75, optimize=True)
    return out.getvalue()
