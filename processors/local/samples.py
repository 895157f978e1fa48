"""Synthetic images with Chinese text, and the clean background they were drawn on.

Two uses: the fixture set that measures text removal (each sample keeps its clean
background as ground truth, the mask of the text and the text boxes), and the
demo's "Chinese product images" (short and long) with OCR results in the seed's
``[[box], [text, confidence]]`` form. Only numpy and Pillow: no OpenCV here,
because the demo runs without the dev extras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
MaskKind = Literal["glyph", "box"]
Float = np.ndarray[Any, Any]  # float64 arrays; numpy's stubs type arithmetic loosely
Uint8 = np.ndarray[Any, np.dtype[np.uint8]]

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
PHRASES = (
    "限时特价",
    "买一送一",
    "正品保证",
    "新品上市",
    "全场包邮",
    "纯棉面料",
    "七天无理由退换",
    "爆款热卖",
    "品质生活",
    "进口原料",
    "官方旗舰店",
    "满三百减五十",
    "今日特惠",
    "加厚保暖",
    "夏季清凉",
    "手工制作",
    "天然成分",
    "温和不刺激",
    "大容量设计",
    "轻薄便携",
)


@dataclass(frozen=True, slots=True)
class Sample:
    """An image with text, its clean background, the removal mask and the text boxes."""

    name: str
    background: str
    image: Uint8  # H x W x 3, RGB, with text
    clean: Uint8  # H x W x 3, RGB, the ground truth under the text
    mask: Uint8  # H x W, 255 where text must be removed
    boxes: tuple[Box, ...]
    texts: tuple[str, ...]

    def ocr_result(self) -> list[list[Any]]:
        """The text boxes as the seed's OCR result: ``[[[x, y] x 4], [text, confidence]]``."""
        return [
            [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]], [text, 0.99]]
            for (x0, y0, x1, y1), text in zip(self.boxes, self.texts, strict=True)
        ]


def find_cjk_font() -> Path:
    """Return a font that has CJK glyphs; scripts/setup.sh installs fonts-noto-cjk."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    raise FileNotFoundError("no CJK font found: install fonts-noto-cjk (scripts/setup.sh)")


def _flat(rng: np.random.Generator, h: int, w: int) -> Float:
    return np.broadcast_to(rng.uniform(30, 225, 3), (h, w, 3)).astype(np.float64)


def _ramp(rng: np.random.Generator, h: int, w: int) -> Float:
    """A value in [0, 1] that grows along a random direction (or radially)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    if rng.random() < 0.3:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = np.hypot(y - cy, x - cx)
        return np.asarray(r / max(r.max(), 1.0), dtype=np.float64)
    angle = rng.uniform(0, np.pi)
    t = x * np.cos(angle) + y * np.sin(angle)
    return np.asarray((t - t.min()) / max(np.ptp(t), 1.0), dtype=np.float64)


def _gradient(rng: np.random.Generator, h: int, w: int) -> Float:
    start, end = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    t = _ramp(rng, h, w)[..., None]
    return np.asarray(start * (1 - t) + end * t, dtype=np.float64)


def _noisy(rng: np.random.Generator, h: int, w: int) -> Float:
    base = _gradient(rng, h, w) if rng.random() < 0.5 else _flat(rng, h, w)
    return np.asarray(base + rng.normal(0, rng.uniform(5, 15), (h, w, 3)), dtype=np.float64)


def _stripes(rng: np.random.Generator, h: int, w: int) -> Float:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    angle = rng.choice([0.0, np.pi / 2, np.pi / 4, rng.uniform(0, np.pi)])
    period = rng.uniform(10, 40)
    phase = (x * np.cos(angle) + y * np.sin(angle)) / period * 2 * np.pi
    # tanh of a sine: stripes with soft (anti-aliased) edges, as a printed fabric has.
    t = 0.5 + 0.5 * np.tanh(3.0 * np.sin(phase))
    a, b = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    return np.asarray(a * (1 - t[..., None]) + b * t[..., None], dtype=np.float64)


def _blurred_noise(rng: np.random.Generator, h: int, w: int, radius: float) -> Float:
    noise = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))
    smooth = np.asarray(noise.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float64)
    return np.asarray((smooth - smooth.mean()) / max(smooth.std(), 1e-6), dtype=np.float64)


def _texture(rng: np.random.Generator, h: int, w: int) -> Float:
    """A wallpaper-like tiled motif, a woven check, or a stochastic paper grain."""
    kind = rng.integers(3)
    a, b = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
    if kind == 0:
        size = int(rng.integers(16, 41))
        tile = _blurred_noise(rng, size, size, size / 8)
        t = np.tile(tile, (h // size + 1, w // size + 1))[:h, :w]
        t = 1 / (1 + np.exp(-2 * t))
    elif kind == 1:
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        p = rng.uniform(8, 24)
        t = 0.25 * (2 + np.sin(2 * np.pi * x / p) + np.sin(2 * np.pi * y / (p * rng.uniform(0.7, 1.3))))
    else:
        t = 0.5 + 0.18 * _blurred_noise(rng, h, w, rng.uniform(1.5, 4.0))
    return a * (1 - t[..., None]) + b * t[..., None] + rng.normal(0, 2.0, (h, w, 3))


BACKGROUNDS: Mapping[str, Callable[[np.random.Generator, int, int], Float]] = {
    "flat": _flat,
    "gradient": _gradient,
    "noisy": _noisy,
    "striped": _stripes,
    "textured": _texture,
}


def _layout(
    rng: np.random.Generator, h: int, w: int, font_path: Path, lines: int
) -> list[tuple[Box, str, ImageFont.FreeTypeFont]]:
    """Place up to ``lines`` phrases at random, without overlaps, inside the image."""
    placed: list[tuple[Box, str, ImageFont.FreeTypeFont]] = []
    for _ in range(lines * 20):
        if len(placed) == lines:
            break
        text = str(rng.choice(PHRASES))
        font = ImageFont.truetype(str(font_path), int(rng.integers(max(14, w // 24), w // 10 + 15)))
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        if right - left > w - 16 or bottom - top > h - 16:
            continue
        x = int(rng.integers(8, w - (right - left) - 7))
        y = int(rng.integers(8, h - (bottom - top) - 7))
        box = (x - 4, y - 4, x + right - left + 4, y + bottom - top + 4)
        if any(_overlaps(box, other) for other, _, _ in placed):
            continue
        placed.append((box, text, font))
    return placed


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_text(
    clean: Uint8,
    layout: Sequence[tuple[Box, str, ImageFont.FreeTypeFont]],
    rng: np.random.Generator,
    mask_kind: MaskKind = "glyph",
    dilate: int = 2,
) -> tuple[Uint8, Uint8]:
    """Draw the laid-out text on ``clean``; return the image and the removal mask.

    The glyph mask covers every pixel the text touched (anti-aliasing included),
    grown by ``dilate`` pixels, as a text segmenter's mask is; the box mask fills
    the text boxes, as a mask drawn from OCR boxes does.
    """
    alpha_image = Image.new("L", (clean.shape[1], clean.shape[0]), 0)
    ink = np.zeros(clean.shape, dtype=np.float64)
    pen = ImageDraw.Draw(alpha_image)
    for (x0, y0, _, _), text, font in layout:
        left, top, _, _ = font.getbbox(text)
        pen.text((x0 + 4 - left, y0 + 4 - top), text, font=font, fill=255)
    alpha = np.asarray(alpha_image, dtype=np.float64)[..., None] / 255.0
    for (x0, y0, x1, y1), _, _ in layout:
        region = clean[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
        # Dark text on light ground and light text on dark ground, as shops print it.
        ink[y0:y1, x0:x1] = rng.uniform(0, 50, 3) if region.mean() > 128 else rng.uniform(205, 255, 3)
    image = np.rint(clean * (1 - alpha) + ink * alpha).astype(np.uint8)
    if mask_kind == "box":
        mask = np.zeros(clean.shape[:2], dtype=np.uint8)
        for (x0, y0, x1, y1), _, _ in layout:
            mask[y0:y1, x0:x1] = 255
        return image, mask
    touched = Image.fromarray(((alpha[..., 0] > 0) * 255).astype(np.uint8))
    grown = touched.filter(ImageFilter.MaxFilter(2 * dilate + 1)) if dilate else touched
    return image, np.asarray(grown, dtype=np.uint8).copy()


def make_sample(
    background: str,
    rng: np.random.Generator,
    shape: tuple[int, int] = (512, 512),
    mask_kind: MaskKind = "glyph",
    name: str = "",
    lines: int = 3,
) -> Sample:
    """Draw one background of kind ``background`` and write ``lines`` phrases on it."""
    h, w = shape
    clean = np.clip(np.rint(BACKGROUNDS[background](rng, h, w)), 0, 255).astype(np.uint8)
    layout = _layout(rng, h, w, find_cjk_font(), lines)
    image, mask = draw_text(clean, layout, rng, mask_kind)
    return Sample(
        name=name or background,
        background=background,
        image=image,
        clean=clean,
        mask=mask,
        boxes=tuple(box for box, _, _ in layout),
        texts=tuple(text for _, text, _ in layout),
    )


def fixture_set(
    per_background: int = 4,
    shape: tuple[int, int] = (512, 512),
    mask_kind: MaskKind = "glyph",
    seed: int = 0,
    backgrounds: Sequence[str] = tuple(BACKGROUNDS),
) -> list[Sample]:
    """The quality fixture set: ``per_background`` samples of each background kind.

    Deterministic for a given seed, so figures are comparable across runs.
    """
    rng = np.random.default_rng(seed)
    return [
        make_sample(kind, rng, shape, mask_kind, name=f"{kind}-{index}")
        for kind in backgrounds
        for index in range(per_background)
    ]


def product_image(is_long: bool, seed: int = 0) -> Sample:
    """A demo "Chinese product image": short 800x800, or a long 750x2250 detail page.

    A gradient or flat backdrop, a simple product silhouette and text blocks; the
    sample's ``ocr_result()`` is what an OCR engine would return for it.
    """
    rng = np.random.default_rng(seed)
    h, w = (2250, 750) if is_long else (800, 800)
    clean = np.clip(np.rint(_gradient(rng, h, w)), 0, 255).astype(np.uint8)
    canvas = Image.fromarray(clean)
    pen = ImageDraw.Draw(canvas)
    sections = 3 if is_long else 1
    for index in range(sections):
        top = index * h // sections
        cx, cy, r = w // 2, top + h // (2 * sections), min(w, h // sections) // 5
        colour = tuple(int(c) for c in rng.integers(40, 220, 3))
        pen.rounded_rectangle((cx - r, cy - int(1.4 * r), cx + r, cy + int(1.4 * r)), r // 3, colour)
    clean = np.asarray(canvas, dtype=np.uint8).copy()
    layout = _layout(rng, h, w, find_cjk_font(), lines=4 * sections)
    image, mask = draw_text(clean, layout, rng, "box")
    return Sample(
        name=f"product-{'long' if is_long else 'short'}-{seed}",
        background="product",
        image=image,
        clean=clean,
        mask=mask,
        boxes=tuple(box for box, _, _ in layout),
        texts=tuple(text for _, text, _ in layout),
    )
