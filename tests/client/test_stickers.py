from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from veil.client.errors import ClientError
from veil.client.stickers import StickerPackError, UnknownSticker, load_pack, sticker_path


def test_pack_has_24_or_more_unique_stickers() -> None:
    pack = load_pack()
    assert pack.name == "veil-basic"
    assert len(pack.stickers) >= 24
    assert len(set(pack.ids)) == len(pack.ids)
    assert len({s.name for s in pack.stickers}) == len(pack.stickers)


def test_every_sticker_is_a_small_palette_png() -> None:
    pack = load_pack()
    pixels: set[bytes] = set()
    for s in pack.stickers:
        path = sticker_path(pack, s.id)
        assert 0 < path.stat().st_size < 8 * 1024
        with Image.open(path) as im:
            assert im.format == "PNG" and im.mode == "P" and im.size == (160, 160)
            im.load()
            pixels.add(im.convert("RGBA").tobytes())
    assert len(pixels) == len(pack.stickers)  # every drawing is distinct


def test_unknown_id() -> None:
    pack = load_pack()
    with pytest.raises(UnknownSticker) as info:
        sticker_path(pack, "no-such-sticker")
    assert isinstance(info.value, ClientError) and "no-such-sticker" in str(info.value)


def _write(tmp_path: Path, manifest: object) -> Path:
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("manifest", [
    None,
    {"pack": "x"},
    {"pack": "x", "stickers": []},
    {"pack": "x", "stickers": [{"id": "a", "name": "A", "file": "../../etc/passwd"}]},
    {"pack": "x", "stickers": [{"id": "a", "name": "A", "file": "a.png"}, {"id": "a", "name": "B", "file": "a.png"}]},
    {"pack": "x", "stickers": [{"id": "A b", "name": "A", "file": "A b.png"}]},
])
def test_bad_manifests_are_refused(tmp_path: Path, manifest: object) -> None:
    with pytest.raises(StickerPackError):
        load_pack(_write(tmp_path, manifest))


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(StickerPackError):
        load_pack(tmp_path)
