"""Draw Veil's built-in sticker pack "veil-basic" with Pillow and write its manifest.

    .venv/bin/python scripts/make_stickers.py

Output: src/veil/client/stickers/veil-basic/<id>.png (160×160, palette PNG with transparency)
and manifest.json. The output is committed next to this script; rerun it after changing a
drawing. Everything is drawn from plain shapes at 4× and scaled down for smooth edges, then
quantised to a small palette so each file stays well under 8 KB.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 160
SCALE = 4
S = SIZE * SCALE
OUT = Path(__file__).resolve().parent.parent / "src" / "veil" / "client" / "stickers" / "veil-basic"

Color = tuple[int, int, int]
Draw = ImageDraw.ImageDraw
INK: Color = (40, 34, 30)
YELLOW: Color = (255, 204, 51)
RED: Color = (232, 64, 72)
WHITE: Color = (255, 255, 255)
W = 10 * SCALE // 4  # outline width


def px(v: float) -> int:
    """Design coordinates are in a 0..160 box; scale them to the drawing canvas."""
    return round(v * SCALE)


def ellipse(d: Draw, box: tuple[float, float, float, float], fill: Color | None, width: int = W) -> None:
    d.ellipse([px(v) for v in box], fill=fill, outline=INK, width=width)


def poly(d: Draw, pts: Sequence[tuple[float, float]], fill: Color | None) -> None:
    d.polygon([(px(x), px(y)) for x, y in pts], fill=fill, outline=INK, width=W)


def line(d: Draw, pts: list[tuple[float, float]], width: float = 6, fill: Color = INK) -> None:
    d.line([(px(x), px(y)) for x, y in pts], fill=fill, width=px(width), joint="curve")


def arc(d: Draw, box: tuple[float, float, float, float], start: float, end: float, width: float = 6) -> None:
    d.arc([px(v) for v in box], start, end, fill=INK, width=px(width))


def star_points(cx: float, cy: float, r_out: float, r_in: float, n: int = 5) -> list[tuple[float, float]]:
    pts = []
    for i in range(2 * n):
        r = r_out if i % 2 == 0 else r_in
        a = -math.pi / 2 + i * math.pi / n
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def heart_points(cx: float, cy: float, s: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(64):
        t = 2 * math.pi * i / 64
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((cx + x * s, cy - y * s))
    return pts


# --- faces --------------------------------------------------------------------------------------

def face(d: Draw, color: Color = YELLOW) -> None:
    ellipse(d, (14, 14, 146, 146), color)


def eyes(d: Draw, y: float = 62, r: float = 8) -> None:
    for x in (58, 102):
        ellipse(d, (x - r, y - r, x + r, y + r), INK, width=1)


def smile(d: Draw) -> None:
    face(d)
    eyes(d)
    arc(d, (48, 60, 112, 116), 20, 160)


def laugh(d: Draw) -> None:
    face(d)
    arc(d, (46, 50, 70, 70), 200, 340)
    arc(d, (90, 50, 114, 70), 200, 340)
    d.chord([px(v) for v in (44, 78, 116, 128)], 0, 180, fill=(150, 30, 40), outline=INK, width=W)


def wink(d: Draw) -> None:
    face(d)
    ellipse(d, (50, 54, 66, 70), INK, width=1)
    line(d, [(92, 64), (112, 60)])
    arc(d, (50, 66, 110, 114), 20, 160)


def sad(d: Draw) -> None:
    face(d, (150, 190, 255))
    eyes(d)
    arc(d, (52, 96, 108, 136), 200, 340)
    ellipse(d, (104, 72, 116, 92), (80, 150, 255), width=2)


def surprised(d: Draw) -> None:
    face(d)
    eyes(d, 58, 9)
    ellipse(d, (66, 90, 94, 124), INK, width=1)


def cool(d: Draw) -> None:
    face(d)
    d.rounded_rectangle([px(v) for v in (38, 50, 76, 76)], radius=px(8), fill=INK)
    d.rounded_rectangle([px(v) for v in (84, 50, 122, 76)], radius=px(8), fill=INK)
    line(d, [(30, 58), (130, 58)], 5)
    arc(d, (56, 78, 112, 116), 20, 140)


def in_love(d: Draw) -> None:
    face(d)
    for x in (58, 102):
        poly(d, heart_points(x, 64, 0.9), RED)
    arc(d, (48, 64, 112, 118), 20, 160)


def angry(d: Draw) -> None:
    face(d, (245, 110, 80))
    eyes(d, 70, 7)
    line(d, [(44, 48), (70, 60)])
    line(d, [(116, 48), (90, 60)])
    arc(d, (56, 104, 104, 136), 200, 340)


def sleepy(d: Draw) -> None:
    face(d)
    arc(d, (46, 56, 70, 72), 20, 160)
    arc(d, (90, 56, 114, 72), 20, 160)
    ellipse(d, (72, 96, 88, 112), INK, width=1)
    for x, y, s in ((118, 30, 14), (138, 12, 10)):
        line(d, [(x, y), (x + s, y), (x, y + s), (x + s, y + s)], 4)


# --- animals ------------------------------------------------------------------------------------

def cat(d: Draw) -> None:
    orange = (247, 160, 70)
    poly(d, [(26, 70), (34, 16), (70, 44)], orange)
    poly(d, [(134, 70), (126, 16), (90, 44)], orange)
    ellipse(d, (22, 32, 138, 144), orange)
    eyes(d, 80, 7)
    poly(d, [(72, 98), (88, 98), (80, 108)], (255, 140, 160))
    for y in (104, 114):
        line(d, [(20, y - 6), (56, y)], 3)
        line(d, [(140, y - 6), (104, y)], 3)


def dog(d: Draw) -> None:
    brown = (190, 130, 80)
    ellipse(d, (26, 26, 134, 142), (235, 200, 150))
    ellipse(d, (8, 30, 44, 100), brown)
    ellipse(d, (116, 30, 152, 100), brown)
    eyes(d, 74, 7)
    ellipse(d, (68, 92, 92, 110), INK, width=1)
    arc(d, (62, 98, 98, 126), 30, 150, 5)


def bear(d: Draw) -> None:
    brown = (150, 100, 60)
    for x in (22, 106):
        ellipse(d, (x, 16, x + 36, 52), brown)
    ellipse(d, (20, 26, 140, 144), brown)
    ellipse(d, (56, 84, 104, 126), (225, 190, 150))
    eyes(d, 70, 7)
    ellipse(d, (70, 90, 90, 104), INK, width=1)


def frog(d: Draw) -> None:
    green = (110, 200, 90)
    ellipse(d, (20, 44, 140, 140), green)
    for x in (30, 90):
        ellipse(d, (x, 20, x + 40, 60), green)
        ellipse(d, (x + 12, 32, x + 28, 48), INK, width=1)
    arc(d, (40, 64, 120, 124), 20, 160)


def fish(d: Draw) -> None:
    blue = (80, 170, 240)
    poly(d, [(112, 80), (150, 46), (150, 114)], blue)
    ellipse(d, (12, 40, 124, 120), blue)
    ellipse(d, (34, 62, 50, 78), INK, width=1)
    arc(d, (60, 50, 100, 110), 300, 60, 4)


def penguin(d: Draw) -> None:
    ellipse(d, (30, 14, 130, 150), (50, 60, 80))
    ellipse(d, (46, 44, 114, 146), WHITE)
    eyes(d, 60, 6)
    poly(d, [(70, 72), (90, 72), (80, 86)], (255, 160, 40))


# --- things -------------------------------------------------------------------------------------

def heart(d: Draw) -> None:
    poly(d, heart_points(80, 84, 4.2), RED)


def star(d: Draw) -> None:
    poly(d, star_points(80, 84, 70, 30), YELLOW)


def thumbs_up(d: Draw) -> None:
    skin = (250, 200, 120)
    d.rounded_rectangle([px(v) for v in (20, 72, 50, 144)], radius=px(6), fill=(90, 140, 230), outline=INK,
                        width=W)
    poly(d, [(56, 74), (80, 20), (98, 24), (94, 66), (138, 70), (140, 140), (56, 140)], skin)
    for y in (88, 106, 124):
        line(d, [(110, y), (140, y)], 4)


def sun(d: Draw) -> None:
    for i in range(12):
        a = i * math.pi / 6
        line(d, [(80 + 44 * math.cos(a), 80 + 44 * math.sin(a)), (80 + 72 * math.cos(a), 80 + 72 * math.sin(a))],
             8, (255, 170, 0))
    ellipse(d, (36, 36, 124, 124), YELLOW)
    eyes(d, 72, 6)
    arc(d, (56, 70, 104, 108), 20, 160, 5)


def moon(d: Draw) -> None:
    ellipse(d, (16, 16, 144, 144), (250, 230, 140))
    d.ellipse([px(v) for v in (52, 4, 172, 124)], fill=(0, 0, 0, 0))
    for x, y in ((120, 110), (134, 70), (104, 140)):
        poly(d, star_points(x, y, 10, 4), YELLOW)


def cloud(d: Draw) -> None:
    grey = (235, 240, 250)
    puffs = ((14, 70, 70, 126), (44, 36, 114, 106), (90, 60, 146, 126))
    base = (40, 90, 120, 126)
    # One outline around the union: ink shapes first, slightly larger, then the fills on top.
    for x0, y0, x1, y1 in puffs:
        d.ellipse([px(x0 - 2.5), px(y0 - 2.5), px(x1 + 2.5), px(y1 + 2.5)], fill=INK)
    d.rectangle([px(base[0]), px(base[1]), px(base[2]), px(base[3] + 2.5)], fill=INK)
    for box in puffs:
        d.ellipse([px(v) for v in box], fill=grey)
    d.rectangle([px(v) for v in base], fill=grey)
    eyes(d, 94, 5)
    arc(d, (70, 92, 90, 110), 20, 160, 4)


def fire(d: Draw) -> None:
    outer = [(80, 8), (118, 60), (130, 104), (112, 140), (80, 152), (48, 140), (30, 104), (44, 62), (60, 84)]
    poly(d, outer, (255, 110, 40))
    poly(d, [(80, 66), (100, 100), (98, 130), (80, 142), (62, 130), (60, 104)], YELLOW)


def flower(d: Draw) -> None:
    line(d, [(80, 96), (80, 156)], 8, (70, 150, 70))
    for i in range(6):
        a = i * math.pi / 3
        x, y = 80 + 34 * math.cos(a), 66 + 34 * math.sin(a)
        ellipse(d, (x - 22, y - 22, x + 22, y + 22), (255, 130, 190))
    ellipse(d, (60, 46, 100, 86), YELLOW)


def cake(d: Draw) -> None:
    d.rounded_rectangle([px(v) for v in (24, 78, 136, 146)], radius=px(10), fill=(245, 200, 150), outline=INK,
                        width=W)
    d.rectangle([px(v) for v in (26, 100, 134, 112)], fill=(240, 110, 150))
    for x in (52, 80, 108):
        d.rectangle([px(v) for v in (x - 4, 44, x + 4, 78)], fill=(120, 170, 255), outline=INK, width=W // 2)
        poly(d, [(x, 24), (x + 7, 38), (x, 44), (x - 7, 38)], (255, 170, 0))


def gift(d: Draw) -> None:
    d.rectangle([px(v) for v in (24, 64, 136, 148)], fill=(90, 170, 240), outline=INK, width=W)
    d.rectangle([px(v) for v in (16, 48, 144, 72)], fill=(110, 190, 255), outline=INK, width=W)
    d.rectangle([px(v) for v in (70, 48, 90, 148)], fill=RED, outline=INK, width=W)
    ellipse(d, (42, 18, 80, 50), RED)
    ellipse(d, (80, 18, 118, 50), RED)


def coffee(d: Draw) -> None:
    d.rounded_rectangle([px(v) for v in (28, 60, 112, 146)], radius=px(14), fill=WHITE, outline=INK, width=W)
    ellipse(d, (100, 78, 140, 118), None, width=W * 2)
    d.rectangle([px(v) for v in (36, 68, 104, 80)], fill=(120, 70, 40))
    for x in (50, 70, 90):
        line(d, [(x, 48), (x + 6, 36), (x, 22)], 4, (150, 150, 150))


def check(d: Draw) -> None:
    ellipse(d, (14, 14, 146, 146), (70, 190, 110))
    line(d, [(44, 84), (70, 110), (118, 52)], 16, WHITE)


def question(d: Draw) -> None:
    ellipse(d, (14, 14, 146, 146), (140, 110, 230))
    arc(d, (52, 30, 108, 86), 180, 400, 14)
    line(d, [(80, 86), (80, 104)], 14, INK)
    ellipse(d, (72, 114, 88, 130), INK, width=1)


def rocket(d: Draw) -> None:
    poly(d, [(80, 8), (106, 40), (106, 112), (54, 112), (54, 40)], (230, 235, 245))
    poly(d, [(54, 80), (28, 120), (54, 112)], RED)
    poly(d, [(106, 80), (132, 120), (106, 112)], RED)
    ellipse(d, (66, 46, 94, 74), (90, 170, 240))
    poly(d, [(62, 114), (98, 114), (80, 154)], (255, 150, 40))


def ghost(d: Draw) -> None:
    pts: list[tuple[float, float]] = [(30, 150)]
    pts += [(80 + 50 * math.cos(a), 70 - 50 * math.sin(a)) for a in (math.pi - i * math.pi / 16 for i in range(17))]
    pts += [(130, 150), (113, 134), (97, 150), (80, 134), (63, 150), (47, 134)]
    poly(d, pts, (245, 245, 255))
    eyes(d, 70, 9)
    ellipse(d, (70, 92, 90, 114), INK, width=1)


def pizza(d: Draw) -> None:
    poly(d, [(20, 30), (140, 30), (80, 152)], (255, 200, 90))
    d.rounded_rectangle([px(v) for v in (14, 18, 146, 40)], radius=px(10), fill=(200, 130, 60), outline=INK,
                        width=W)
    for x, y in ((60, 60), (98, 64), (80, 100)):
        ellipse(d, (x - 11, y - 11, x + 11, y + 11), (210, 50, 50))


STICKERS: list[tuple[str, str, Callable[[Draw], None]]] = [
    ("smile", "Smile", smile), ("laugh", "Laugh", laugh), ("wink", "Wink", wink), ("sad", "Sad", sad),
    ("surprised", "Surprised", surprised), ("cool", "Cool", cool), ("in-love", "In love", in_love),
    ("angry", "Angry", angry), ("sleepy", "Sleepy", sleepy), ("cat", "Cat", cat), ("dog", "Dog", dog),
    ("bear", "Bear", bear), ("frog", "Frog", frog), ("fish", "Fish", fish), ("penguin", "Penguin", penguin),
    ("heart", "Heart", heart), ("star", "Star", star), ("thumbs-up", "Thumbs up", thumbs_up),
    ("sun", "Sun", sun), ("moon", "Moon", moon), ("cloud", "Cloud", cloud), ("fire", "Fire", fire),
    ("flower", "Flower", flower), ("cake", "Cake", cake), ("gift", "Gift", gift), ("coffee", "Coffee", coffee),
    ("check", "Done", check), ("question", "Question", question), ("rocket", "Rocket", rocket),
    ("ghost", "Ghost", ghost), ("pizza", "Pizza", pizza),
]


def render(draw_fn: Callable[[Draw], None]) -> Image.Image:
    canvas = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    draw_fn(ImageDraw.Draw(canvas))
    small = canvas.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    # Hard-edged alpha keeps the palette small; the 4× supersampling already smoothed colours.
    alpha = small.getchannel("A").point(lambda a: 255 if a >= 96 else 0)
    small.putalpha(alpha)
    return small.quantize(colors=24, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, str]] = []
    for sticker_id, name, draw_fn in STICKERS:
        file = f"{sticker_id}.png"
        render(draw_fn).save(OUT / file, format="PNG", optimize=True)
        entries.append({"id": sticker_id, "name": name, "file": file})
    manifest = {"pack": "veil-basic", "stickers": entries}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    sizes = sorted((p.stat().st_size, p.name) for p in OUT.glob("*.png"))
    print(f"{len(entries)} stickers in {OUT}; largest {sizes[-1][1]} = {sizes[-1][0]} bytes")


if __name__ == "__main__":
    main()
