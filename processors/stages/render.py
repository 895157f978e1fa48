"""Rendering translated text into the boxes where the original text was.

For each OCR box: the text colour is read from the original image (the pixels
of the box split into two luminance classes by Otsu's threshold; the text is
the smaller class), the font size is the largest that fits the box (wrapping
onto several lines only when one line cannot fit at the smallest size), and
the text is centred. Only pixels inside the boxes change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from streams.errors import ConfigError

DEFAULT_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
KOREAN_FACE = 1  # index of "Noto Sans CJK KR" in the collection
MIN_SIZE = 8
LINE_SPACING = 1.15
MAX_COLOUR_SAMPLES = 1 << 20  # pixels of a box read for its text colour (4 MiB of float64 per channel)
Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Placement:
    """Translated ``text`` for the quadrilateral ``points`` (clockwise from top-left)."""

    points: Sequence[Point]
    text: str

    def rect(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The bounding rectangle (left, top, right, bottom), clipped to the image."""
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return (max(0, int(min(xs))), max(0, int(min(ys))),
                min(width, int(np.ceil(max(xs)))), min(height, int(np.ceil(max(ys)))))


def otsu_threshold(values: np.ndarray) -> float:
    """The threshold that best separates uint8 ``values`` into two classes (<= t, > t)."""
    histogram = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    weights = np.cumsum(histogram)
    means = np.cumsum(histogram * np.arange(256))
    total, total_mean = weights[-1], means[-1]
    between = (total_mean * weights - means * total) ** 2 / np.maximum(weights * (total - weights), 1e-9)
    return float(np.argmax(between))


def text_colour(original: np.ndarray, rect: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The colour of the text inside ``rect`` of the original RGB image.

    A box of more than MAX_COLOUR_SAMPLES pixels is read on an even grid: the
    colour classes do not need every pixel, and a box over a whole 40 M pixel
    image would otherwise take 1.2 GB of float64 copies.
    """
    left, top, right, bottom = rect
    region = original[top:bottom, left:right]
    stride = max(1, math.ceil(math.sqrt(region.shape[0] * region.shape[1] / MAX_COLOUR_SAMPLES)))
    pixels = region[::stride, ::stride].reshape(-1, 3).astype(np.float64)
    if len(pixels) == 0:
        return (0, 0, 0)
    luminance = np.clip(pixels @ np.array([0.299, 0.587, 0.114]), 0, 255).round().astype(np.uint8)
    dark = luminance <= otsu_threshold(luminance)
    text = dark if dark.sum() <= (~dark).sum() else ~dark
    if not text.any():  # one luminance only (a flat box): its own colour, not the mean of nothing
        text = np.ones_like(dark)
    return tuple(int(c) for c in pixels[text].mean(axis=0).round())  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=KOREAN_FACE if path.endswith(".ttc") else 0)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, line = [], ""
    for char in text:
        if line and font.getlength(line + char) > width:
            lines.append(line)
            line = char.lstrip()
        else:
            line += char
    return [*lines, line] if line else lines


def fit(text: str, width: int, height: int, font_path: str) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font (and lines) for ``text`` to fit a ``width`` x ``height`` box."""
    low, high = MIN_SIZE, max(MIN_SIZE, int(height * 0.95))
    while low < high:  # largest size whose single line fits
        size = (low + high + 1) // 2
        font = _font(font_path, size)
        if font.getlength(text) <= width and size <= height:
            low = size
        else:
            high = size - 1
    font = _font(font_path, low)
    if font.getlength(text) <= width or low > MIN_SIZE:
        return font, [text]
    for size in range(MIN_SIZE, 0, -1):  # one line cannot fit: wrap at the smallest size that does
        font = _font(font_path, size)
        lines = _wrap(text, font, width)
        if len(lines) * size * LINE_SPACING <= height or size == 1:
            return font, lines
    return font, [text]


class Renderer:
    def __init__(self, font_path: str = DEFAULT_FONT) -> None:
        if not Path(font_path).is_file():
            raise ConfigError("MILLSTREAM_RENDER_FONT",
                              f"font {font_path} not found (scripts/setup.sh installs fonts-noto-cjk)")
        self.font_path = font_path

    def render(self, cleaned: np.ndarray, original: np.ndarray,
               placements: Sequence[Placement]) -> np.ndarray:
        """Draw each translation into its box of ``cleaned``; colours come from ``original``.

        Each box is drawn on a crop of its own, so the memory beyond the result is
        one box, not three more copies of the whole image (440 MB at 40 M pixels).
        """
        height, width = cleaned.shape[:2]
        out = np.array(cleaned, dtype=np.uint8, copy=True)
        for place in placements:
            left, top, right, bottom = place.rect(width, height)
            if right - left < 2 or bottom - top < 2 or not place.text.strip():
                continue
            font, lines = fit(place.text, right - left, bottom - top, self.font_path)
            colour = text_colour(original, (left, top, right, bottom))
            crop = Image.fromarray(np.ascontiguousarray(out[top:bottom, left:right]))
            draw = ImageDraw.Draw(crop)
            line_height = font.size * LINE_SPACING
            y = (bottom - top - line_height * len(lines)) / 2
            for line in lines:
                draw.text(((right - left - font.getlength(line)) / 2, y), line, font=font, fill=colour)
                y += line_height
            out[top:bottom, left:right] = np.asarray(crop)
        return out
