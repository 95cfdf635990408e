"""Photos, videos and stickers through real devices and a real server."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ServerProcess
from tests.integration.people import drain, register
from veil.client.errors import UsageError


def make_photo(path: Path, fmt: str = "JPEG", size: tuple[int, int] = (320, 200)) -> Path:
    img = Image.new("RGB", size, (20, 120, 220))
    for x in range(0, size[0], 7):
        img.putpixel((x, x % size[1]), (255, 255, 0))
    img.save(path, fmt)
    return path


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def make_mp4(path: Path, seconds: int = 3) -> Path:
    """A minimal MP4 header (ftyp + moov/mvhd + trak/tkhd) with a duration and a size."""
    mvhd = _box(b"mvhd", bytes(4) + bytes(8) + struct.pack(">II", 1000, seconds * 1000) + bytes(80))
    tkhd = _box(b"tkhd", bytes(4) + bytes(8) + bytes(4) + bytes(4) + struct.pack(">I", seconds * 1000)
                + bytes(8) + bytes(8) + bytes(36) + struct.pack(">II", 640 << 16, 360 << 16))
    moov = _box(b"moov", mvhd + _box(b"trak", tkhd))
    path.write_bytes(_box(b"ftyp", b"isom" + bytes(4) + b"isommp41") + moov + _box(b"mdat", bytes(4096)))
    return path


@pytest.mark.parametrize("secret", [True, False])
async def test_photo_video_and_sticker(server: ServerProcess, tmp_path: Path, secret: bool) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        photo = make_photo(tmp_path / "beach.jpg")
        video = make_mp4(tmp_path / "clip.mp4")
        p = await alice.send_media("bob", photo, secret=secret, caption="the beach")
        v = await alice.send_media("bob", video, secret=secret)
        s = await alice.send_sticker("bob", "heart", secret=secret)
        await drain(bob)
        got = {m.id: m for m in bob.messages("alice", secret=secret)}
        bp, bv, bs = got[p.id], got[v.id], got[s.id]
        assert bp.kind == "image" and bp.text == "the beach" and bp.attachment is not None
        assert (bp.attachment["width"], bp.attachment["height"], bp.attachment["mime"]) == (320, 200, "image/jpeg")
        assert bp.attachment["thumbnail"][:2] == b"\xff\xd8"  # a small JPEG thumbnail came along
        assert bv.kind == "video" and bv.attachment is not None
        assert (bv.attachment["duration_ms"], bv.attachment["width"]) == (3000, 640)
        assert bs.kind == "sticker" and bs.sticker == "veil-basic/heart"
        out = bob.save_attachment(p.id, tmp_path / "saved.jpg")
        assert out.read_bytes() == photo.read_bytes()
        assert bob.save_attachment(v.id, tmp_path).read_bytes() == video.read_bytes()
        # what the devices keep on disk is ciphertext
        for f in (bob.profile / "attachments").iterdir():
            assert photo.read_bytes()[:64] not in f.read_bytes()
        # the sender can save its own copy as well
        assert alice.save_attachment(p.id, tmp_path / "mine.jpg").read_bytes() == photo.read_bytes()
    finally:
        await alice.close()
        await bob.close()


async def test_secret_blob_is_opaque_on_the_server(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    try:
        photo = make_photo(tmp_path / "x.png", "PNG")
        await alice.send_media("bob", photo, secret=True)
        stored = b"".join(f.read_bytes() for f in (server.data_dir / "blobs").rglob("*") if f.is_file())
        assert stored and photo.read_bytes()[16:200] not in stored
    finally:
        await alice.close()
        await bob.close()


async def test_bad_media_is_refused_clearly(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    await register(server.url, tmp_path, "bob")
    try:
        fake = tmp_path / "not-a-photo.jpg"
        fake.write_bytes(b"this is text pretending to be a JPEG")
        with pytest.raises(UsageError):
            await alice.send_media("bob", fake, secret=True)
        with pytest.raises(UsageError):
            await alice.send_sticker("bob", "no-such-sticker", secret=True)
    finally:
        await alice.close()
