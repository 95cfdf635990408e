from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from veil.client.media import THUMBNAIL_MAX, MediaInfo, UnsupportedMedia, probe, probe_file, sniff, thumbnail

# --- builders for minimal containers -------------------------------------------------------------


def box(kind: bytes, payload: bytes, *, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mvhd(timescale: int, duration: int, version: int = 0) -> bytes:
    if version == 1:
        body = struct.pack(">BxxxQQIQ", 1, 0, 0, timescale, duration)
    else:
        body = struct.pack(">BxxxIIII", 0, 0, 0, timescale, duration)
    return box(b"mvhd", body + bytes(80))  # rate, volume, matrix, ... (unused here)


def tkhd(width: int, height: int, version: int = 0) -> bytes:
    if version == 1:
        head = struct.pack(">BxxxQQIIQ", 1, 0, 0, 1, 0, 0)
    else:
        head = struct.pack(">BxxxIIIII", 0, 0, 0, 1, 0, 0)
    return box(b"tkhd", head + bytes(8 + 8 + 36) + struct.pack(">II", width << 16, height << 16))


def trak(width: int, height: int, handler: bytes, version: int = 0) -> bytes:
    hdlr = box(b"hdlr", bytes(8) + handler + bytes(12) + b"\0")
    return box(b"trak", tkhd(width, height, version) + box(b"mdia", hdlr))


def mp4(*, duration: int = 12_345, timescale: int = 1000, version: int = 0, large_mdat: bool = False,
        moov_last: bool = True, brand: bytes = b"isom") -> bytes:
    ftyp = box(b"ftyp", brand + b"\0\0\0\0" + b"isomiso2mp41")
    moov = box(b"moov", mvhd(timescale, duration, version)
               + trak(0, 0, b"soun", version) + trak(640, 360, b"vide", version))
    mdat = box(b"mdat", bytes(1000), large=large_mdat)
    return ftyp + (mdat + moov if moov_last else moov + mdat)


def vint_size(n: int) -> bytes:
    return bytes([0x80 | n]) if n < 127 else (0x01 << 56 | n).to_bytes(8, "big")


def el(eid: int, payload: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + vint_size(len(payload)) + payload


def uint_el(eid: int, v: int) -> bytes:
    return el(eid, v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big"))


def webm(*, duration: float | None = 5400.0, scale: int = 1_000_000, unknown_segment: bool = False,
         doctype: bytes = b"webm") -> bytes:
    header = el(0x1A45DFA3, uint_el(0x4286, 1) + el(0x4282, doctype) + uint_el(0x4287, 4))
    info = uint_el(0x2AD7B1, scale)
    if duration is not None:
        info += el(0x4489, struct.pack(">d", duration))
    audio = el(0xAE, uint_el(0xD7, 1) + uint_el(0x83, 2))
    video = el(0xAE, uint_el(0xD7, 2) + uint_el(0x83, 1) + el(0xE0, uint_el(0xB0, 1280) + uint_el(0xBA, 720)))
    void, cluster = el(0xEC, bytes(4)), el(0x1F43B675, bytes(64))
    body = void + el(0x1549A966, info) + el(0x1654AE6B, audio + video) + cluster
    if unknown_segment:
        return header + bytes.fromhex("18538067") + b"\x01\xff\xff\xff\xff\xff\xff\xff" + body
    return header + el(0x18538067, body)


def image_bytes(fmt: str, size: tuple[int, int] = (300, 200), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 0).save(out, format=fmt)
    return out.getvalue()


# --- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, mime", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"),
                                       ("WEBP", "image/webp")])
def test_images(tmp_path: Path, fmt: str, mime: str) -> None:
    path = tmp_path / "picture.bin"  # the name says nothing; the content decides
    path.write_bytes(image_bytes(fmt))
    info = probe(path)
    assert info == MediaInfo(mime=mime, kind="image", width=300, height=200)
    thumb = thumbnail(path, info)
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "JPEG" and im.size == (96, 64)


def test_name_does_not_matter_content_does(tmp_path: Path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"<html>not a photo</html>")
    with pytest.raises(UnsupportedMedia):
        probe(fake)
    png = tmp_path / "photo2.jpg"
    png.write_bytes(image_bytes("PNG"))
    assert probe(png).mime == "image/png"


def test_damaged_image(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(image_bytes("PNG")[:30])
    with pytest.raises(UnsupportedMedia):
        probe(path)


def test_exif_rotation_swaps_reported_size(tmp_path: Path) -> None:
    im = Image.new("RGB", (300, 200), (0, 0, 255))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rotated"
    im.save(path, format="JPEG", exif=exif.tobytes())
    info = probe(path)
    assert (info.width, info.height) == (200, 300)
    with Image.open(io.BytesIO(thumbnail(path, info))) as t:
        assert t.size == (64, 96)


def test_transparent_png_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "t"
    path.write_bytes(image_bytes("PNG", (50, 40), mode="RGBA"))
    info = probe(path)
    with Image.open(io.BytesIO(thumbnail(path, info))) as t:
        assert t.size == (50, 40) and t.mode == "RGB"  # small images are not enlarged


# --- video --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"version": 1}, {"large_mdat": True}, {"moov_last": False},
                                    {"timescale": 90_000, "duration": 1_111_050}])
def test_mp4(tmp_path: Path, kwargs: dict[str, int]) -> None:
    path = tmp_path / "clip.webm"  # misleading name on purpose
    path.write_bytes(mp4(**kwargs))  # type: ignore[arg-type]
    info = probe(path)
    assert (info.mime, info.kind, info.width, info.height, info.duration_ms) == (
        "video/mp4", "video", 640, 360, 12_345)
    thumb = thumbnail(path, info)
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "JPEG" and im.size == (96, 54)
        assert im.getpixel((2, 2)) != im.getpixel((48, 27))  # a play triangle on a dark tile


def test_mp4_quicktime_and_unknown_duration(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.write_bytes(mp4(brand=b"qt  ", duration=0xFFFFFFFF))
    info = probe(path)
    assert info.mime == "video/quicktime" and info.duration_ms is None


@pytest.mark.parametrize("data", [
    box(b"ftyp", b"isom"),  # no moov
    box(b"ftyp", b"isom") + box(b"moov", mvhd(1000, 5)),  # no video track
    box(b"ftyp", b"isom") + box(b"moov", mvhd(0, 5) + trak(1, 1, b"vide")),  # zero timescale
    box(b"ftyp", b"isom") + struct.pack(">I4s", 4, b"moov"),  # size smaller than its header
    box(b"ftyp", b"isom") + struct.pack(">I4s", 1000, b"moov") + bytes(10),  # size past the end
    box(b"ftyp", b"isom") + box(b"moov", box(b"trak", box(b"tkhd", b"\x00\x00"))),  # short tkhd
])
def test_malformed_mp4(data: bytes) -> None:
    with pytest.raises(UnsupportedMedia):
        probe_file(io.BytesIO(data))


@pytest.mark.parametrize("kwargs", [{}, {"unknown_segment": True}, {"scale": 500_000, "duration": 10800.0}])
def test_webm(tmp_path: Path, kwargs: dict[str, object]) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(webm(**kwargs))  # type: ignore[arg-type]
    info = probe(path)
    assert info == MediaInfo(mime="video/webm", kind="video", width=1280, height=720, duration_ms=5400)
    with Image.open(io.BytesIO(thumbnail(path, info))) as im:
        assert im.size == (96, 54)


def test_webm_without_duration_and_matroska() -> None:
    assert probe_file(io.BytesIO(webm(duration=None))).duration_ms is None
    assert probe_file(io.BytesIO(webm(duration=float("nan")))).duration_ms is None
    assert probe_file(io.BytesIO(webm(doctype=b"matroska"))).mime == "video/x-matroska"
    with pytest.raises(UnsupportedMedia):
        probe_file(io.BytesIO(webm(doctype=b"mkv3d")))


def test_truncated_webm_and_mp4_never_crash() -> None:
    for data in (webm(), mp4(moov_last=False)):
        for n in range(len(data)):
            try:
                probe_file(io.BytesIO(data[:n]))
            except UnsupportedMedia:
                pass


# --- fuzzing: random bytes give UnsupportedMedia or a sane answer, nothing else ---------------


def _fuzz(data: bytes) -> None:
    try:
        info = probe_file(io.BytesIO(data))
    except UnsupportedMedia:
        return
    assert info.width > 0 and info.height > 0


_PREFIXES = [b"", b"\x00\x00\x00\x14ftypisom", b"\x1a\x45\xdf\xa3", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff",
             b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 "]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PREFIXES), st.binary(max_size=300))
def test_fuzz_random_bytes(prefix: bytes, data: bytes) -> None:
    _fuzz(prefix + data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["mp4", "webm"]), st.integers(0, 10_000), st.integers(0, 255))
def test_fuzz_mutated_containers(which: str, where: int, value: int) -> None:
    data = bytearray(mp4() if which == "mp4" else webm())
    data[where % len(data)] = value
    _fuzz(bytes(data))


def test_sniff() -> None:
    assert sniff(b"") is None
    assert sniff(image_bytes("JPEG")[:16]) == "image/jpeg"
    assert sniff(b"RIFF\0\0\0\0WAVEfmt ") is None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia):
        probe(tmp_path / "nope")


def test_thumbnail_bounds_for_extreme_aspect() -> None:
    info = MediaInfo(mime="video/mp4", kind="video", width=4000, height=10)
    with Image.open(io.BytesIO(thumbnail("unused", info))) as im:
        assert im.size == (THUMBNAIL_MAX, 1)
