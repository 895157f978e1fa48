"""Rendering translated text into the boxes where the original text was.

For each OCR box (docs/pipeline-text.md):

1. the look of the original is read from its pixels (render_style): fill colour,
   stroke colour and width where it had one, glyph height, ink margins;
2. the alignment comes from the box's paragraph, else its margins (render_layout);
3. the size is the largest that fits the box, wrapped at spaces, but not much
   taller than the original's glyphs (render_layout.fit);
4. the text is drawn into two coverage masks (with its stroke, and its fill
   alone), cut by the box's polygon, and blended over the cleaned image.

Where the cleaned ground under the box lost the contrast the original text had
against its own (CONTRAST_FLOOR), a thin outline of black or white, whichever
stands out from the fill, keeps it legible. Only pixels inside the boxes change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from processors.stages.render_layout import (
    Align,
    Layout,
    fit,
    group_alignments,
    line_origins,
    margin_alignment,
)
from processors.stages.render_style import (
    RGB,
    GlyphStyle,
    border_colour,
    contrast_ratio,
    estimate_style,
)
from streams.errors import ConfigError

DEFAULT_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
CONTRAST_FLOOR = 3.0  # WCAG's minimum for large text
MAX_GROUND_SAMPLES = 1 << 20  # pixels of the cleaned box read for its ground colour
BAND_ROWS = 256  # rows blended at once: float32 copies of a band, never of a whole box
Point = tuple[float, float]
Rect = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Placement:
    """Translated ``text`` for the quadrilateral ``points`` (clockwise from top-left)."""

    points: Sequence[Point]
    text: str

    def rect(self, width: int, height: int) -> Rect:
        """The bounding rectangle (left, top, right, bottom), clipped to the image."""
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return (max(0, int(min(xs))), max(0, int(min(ys))),
                min(width, int(np.ceil(max(xs)))), min(height, int(np.ceil(max(ys)))))


@dataclass(frozen=True, slots=True)
class Ink:
    """The colours one box is drawn with."""

    fill: RGB
    stroke: RGB | None
    stroke_width: int


def ink_for(style: GlyphStyle, ground: RGB, size: int) -> Ink:
    """The original's colours, with an outline added where the new ground took their contrast."""
    if style.stroke is not None:
        return Ink(style.fill, style.stroke, max(1, min(style.stroke_width, size // 4)))
    wanted = min(CONTRAST_FLOOR, contrast_ratio(style.fill, style.background))
    if contrast_ratio(style.fill, ground) >= wanted:
        return Ink(style.fill, None, 0)
    black, white = (0, 0, 0), (255, 255, 255)
    outline = black if contrast_ratio(style.fill, black) >= contrast_ratio(style.fill, white) else white
    return Ink(style.fill, outline, max(1, size // 12))


class Renderer:
    def __init__(self, font_path: str = DEFAULT_FONT) -> None:
        if not Path(font_path).is_file():
            raise ConfigError("MILLSTREAM_RENDER_FONT",
                              f"font {font_path} not found (scripts/setup.sh installs fonts-noto-cjk)")
        self.font_path = font_path

    def render(self, cleaned: np.ndarray, original: np.ndarray,
               placements: Sequence[Placement]) -> np.ndarray:
        """Draw each translation into its box of ``cleaned``; its look comes from ``original``.

        Each box is drawn on a crop of its own, so the memory beyond the result is
        one box, not three more copies of the whole image (440 MB at 40 M pixels).
        """
        height, width = cleaned.shape[:2]
        out = np.array(cleaned, dtype=np.uint8, copy=True)
        rects = [place.rect(width, height) for place in placements]
        grouped = group_alignments(rects)
        for place, rect, align in zip(placements, rects, grouped, strict=True):
            left, top, right, bottom = rect
            if right - left < 2 or bottom - top < 2 or not place.text.strip():
                continue
            style = estimate_style(original, rect)
            self.draw_box(out[top:bottom, left:right], place, rect, style, align)
        return out

    def draw_box(self, crop: np.ndarray, place: Placement, rect: Rect, style: GlyphStyle,
                 align: Align | None) -> None:
        """Draw the translation into ``crop`` (the box's pixels, changed in place), inside its polygon."""
        w, h = rect[2] - rect[0], rect[3] - rect[1]
        stroke = style.stroke_width if style.stroke is not None else 0
        layout = fit(place.text, w, h, self.font_path, glyph_height=style.glyph_height, stroke=stroke)
        step = max(1, int(np.ceil(np.sqrt(w * h / MAX_GROUND_SAMPLES))))
        ground, _ = border_colour(crop[::step, ::step])
        ink = ink_for(style, ground, int(layout.font.size))
        if ink.stroke_width != stroke:  # an outline added for contrast takes room too
            layout = fit(place.text, w, h, self.font_path, glyph_height=style.glyph_height,
                         stroke=ink.stroke_width)
        side = align or margin_alignment(style.ink_margins, w)
        outer, inner = self._coverage(layout, w, h, side, ink.stroke_width)
        drawn = (outer or inner).getbbox()
        if drawn is None:
            return
        polygon = _polygon_mask(place.points, rect)
        x0, y0, x1, y1 = drawn
        for band in range(y0, y1, BAND_ROWS):  # float copies of a band at a time, not of the box
            rows = slice(band, min(y1, band + BAND_ROWS))
            cut = np.asarray(polygon)[rows, x0:x1].astype(np.float32) / 255
            pixels = crop[rows, x0:x1].astype(np.float32)
            if ink.stroke is not None:
                alpha = (np.asarray(outer)[rows, x0:x1] / np.float32(255) * cut)[..., None]
                pixels += (np.asarray(ink.stroke, np.float32) - pixels) * alpha
            alpha = (np.asarray(inner)[rows, x0:x1] / np.float32(255) * cut)[..., None]
            pixels += (np.asarray(ink.fill, np.float32) - pixels) * alpha
            crop[rows, x0:x1] = np.clip(np.round(pixels), 0, 255).astype(np.uint8)

    def _coverage(self, layout: Layout, w: int, h: int, align: Align,
                  stroke: int) -> tuple[Image.Image | None, Image.Image]:
        """Coverage masks (0-255) of the text with its stroke (None without one), and of its fill alone."""
        outer = Image.new("L", (w, h), 0) if stroke else None
        inner = Image.new("L", (w, h), 0)
        pen_inner = ImageDraw.Draw(inner)
        for line, origin in zip(layout.lines, line_origins(layout, w, h, align, stroke), strict=True):
            if outer is not None:
                ImageDraw.Draw(outer).text(origin, line, font=layout.font, fill=255, anchor="ls",
                                           stroke_width=stroke, stroke_fill=255)
            pen_inner.text(origin, line, font=layout.font, fill=255, anchor="ls")
        return outer, inner


def _polygon_mask(points: Sequence[Point], rect: Rect) -> Image.Image:
    """255 inside the box's quadrilateral (relative to ``rect``), 0 outside."""
    left, top, right, bottom = rect
    canvas = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(canvas).polygon([(x - left, y - top) for x, y in points], fill=255)
    return canvas
