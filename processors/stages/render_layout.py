"""Where the translation goes inside its box: alignment, font size, lines.

Alignment (decision 0039). Boxes stacked as the lines of one paragraph (they
overlap horizontally by half the narrower one, the vertical gap is at most one
box height, and their heights differ by less than 1.6x) share the edge their
left sides, centres or right sides agree on best: the spread (max - min) of
each is measured, and the smallest wins when it is within ALIGN_TOLERANCE of
the mean width and clearly below the other two. A box alone, or a group that
does not tell (equal widths agree on all three), goes by its own ink margins:
equal margins centre, else the side with the smaller margin.

Size: the largest size, at most GROWTH x the size whose Hangul is as tall as
the original's glyphs (so a one-word translation does not blow up past the
original), whose lines, wrapped at spaces (and inside a word only when the
word alone is too wide), fit the box with the stroke. When even the smallest
size does not fit, the lines are drawn at the smallest size and the box
clips them: nothing is ever drawn outside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import numpy as np
from PIL import ImageFont

KOREAN_FACE = 1  # index of "Noto Sans CJK KR" in the collection
MIN_SIZE = 4
MAX_SIZE = 1024  # pixels; larger text is no longer text a box needs
GROWTH = 1.1
LINE_PITCH = 1.2  # baseline to baseline, in font sizes
ALIGN_TOLERANCE = 0.04
REFERENCE = "한글가Ag"  # the ascent and descent of a line of Korean with Latin
Rect = tuple[int, int, int, int]


class Align(Enum):
    LEFT = "left"
    CENTRE = "centre"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class Layout:
    font: ImageFont.FreeTypeFont
    lines: tuple[str, ...]
    pitch: int  # pixels from one baseline to the next
    ascent: int  # pixels above the first baseline that ink may reach
    descent: int  # pixels below the last baseline
    fits: bool

    @property
    def height(self) -> int:
        return self.ascent + self.pitch * (len(self.lines) - 1) + self.descent


@lru_cache(maxsize=32)  # each face maps the font file: 20 MB of address space for Noto CJK
def font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=KOREAN_FACE if path.endswith(".ttc") else 0)


@lru_cache(maxsize=16)
def hangul_height_per_size(path: str) -> float:
    """How tall (in pixels per pixel of size) the ink of a line of Hangul is in this font."""
    _, top, _, bottom = font(path, 100).getbbox("한글가", anchor="ls")
    return (bottom - top) / 100


def size_for_glyph_height(path: str, glyph_height: float) -> int:
    """The size whose Hangul stands as tall as ``glyph_height`` pixels."""
    return max(MIN_SIZE, round(glyph_height / hangul_height_per_size(path)))


def wrap(text: str, face: ImageFont.FreeTypeFont, width: float, stroke: int = 0) -> list[str]:
    """Lines of ``text`` no wider than ``width``: broken at spaces, inside a word only when it must."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if _width(candidate, face, stroke) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:  # the word alone is wider than the box, or starts a new line
            if line and _width(line + char, face, stroke) > width:
                lines.append(line)
                line = char
            else:
                line += char
    return [*lines, line] if line else lines


def _width(text: str, face: ImageFont.FreeTypeFont, stroke: int) -> float:
    left, _, right, _ = face.getbbox(text, anchor="ls", stroke_width=stroke)
    return float(right - left)


def layout_at(text: str, path: str, size: int, width: int, height: int, stroke: int) -> Layout:
    face = font(path, size)
    lines = tuple(wrap(text, face, width, stroke)) or (text.strip(),)
    boxes = [face.getbbox(line, anchor="ls", stroke_width=stroke) for line in (*lines, REFERENCE)]
    ascent, descent = -int(min(b[1] for b in boxes)), int(np.ceil(max(b[3] for b in boxes)))
    pitch = max(1, round(size * LINE_PITCH)) + 2 * stroke
    fitted = Layout(face, lines, pitch, ascent, descent, True)
    fits = fitted.height <= height and all(_width(line, face, stroke) <= width for line in lines)
    return fitted if fits else Layout(face, lines, pitch, ascent, descent, False)


def fit(text: str, width: int, height: int, path: str, *, glyph_height: float | None = None,
        stroke: int = 0) -> Layout:
    """The largest layout of ``text`` that fits ``width`` x ``height`` (or the smallest, clipped).

    A binary search over sizes: each size tried is a FreeType face (a map of the whole
    font file), so a tall box must not try thousands of them.
    """
    ceiling = max(1, min(int(height), int(1.2 * width) + 2 * stroke, MAX_SIZE))
    if glyph_height:
        ceiling = min(ceiling, max(MIN_SIZE, int(GROWTH * size_for_glyph_height(path, glyph_height))))
    low = min(MIN_SIZE, ceiling)
    best = layout_at(text, path, low, width, height, stroke)
    if not best.fits:
        return best
    high = ceiling
    while low < high:  # invariant: ``low`` fits
        size = (low + high + 1) // 2
        attempt = layout_at(text, path, size, width, height, stroke)
        if attempt.fits:
            low, best = size, attempt
        else:
            high = size - 1
    return best


def line_origins(layout: Layout, width: int, height: int, align: Align,
                 stroke: int) -> list[tuple[float, float]]:
    """The (x, baseline y) of each line inside a ``width`` x ``height`` box, block centred vertically."""
    y = (height - layout.height) / 2 + layout.ascent
    origins = []
    for line in layout.lines:
        left, _, right, _ = layout.font.getbbox(line, anchor="ls", stroke_width=stroke)
        if align is Align.LEFT:
            x = -left
        elif align is Align.RIGHT:
            x = width - right
        else:
            x = (width - (right - left)) / 2 - left
        origins.append((float(x), float(y)))
        y += layout.pitch
    return origins


def group_alignments(rects: Sequence[Rect]) -> list[Align | None]:
    """The alignment each box's paragraph agrees on, or None where the group does not tell."""
    parent = list(range(len(rects)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(rects):
        for j in range(i + 1, len(rects)):
            if _stacked(a, rects[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(rects)):
        groups.setdefault(root(i), []).append(i)
    result: list[Align | None] = [None] * len(rects)
    for members in groups.values():
        if len(members) > 1:
            verdict = _agreed([rects[i] for i in members])
            for i in members:
                result[i] = verdict
    return result


def margin_alignment(margins: tuple[float, float] | None, width: int) -> Align:
    """A lone box: centred when its ink margins match, else towards the smaller margin."""
    if margins is None:
        return Align.CENTRE
    left, right = margins
    if abs(left - right) <= max(2.0, 0.08 * width):
        return Align.CENTRE
    return Align.LEFT if left < right else Align.RIGHT


def _stacked(a: Rect, b: Rect) -> bool:
    wa, wb, ha, hb = a[2] - a[0], b[2] - b[0], a[3] - a[1], b[3] - b[1]
    if min(wa, wb, ha, hb) <= 0 or max(ha, hb) > 1.6 * min(ha, hb):
        return False
    overlap = min(a[2], b[2]) - max(a[0], b[0])
    gap = max(a[1], b[1]) - min(a[3], b[3])
    return overlap >= 0.5 * min(wa, wb) and -0.5 * min(ha, hb) <= gap <= max(ha, hb)


def _agreed(rects: Sequence[Rect]) -> Align | None:
    mean_width = sum(r[2] - r[0] for r in rects) / len(rects)
    tolerance = max(3.0, ALIGN_TOLERANCE * mean_width)
    spreads = {
        Align.LEFT: _spread([r[0] for r in rects]),
        Align.CENTRE: _spread([(r[0] + r[2]) / 2 for r in rects]),
        Align.RIGHT: _spread([r[2] for r in rects]),
    }
    best = min(spreads, key=lambda a: spreads[a])
    others = [v for a, v in spreads.items() if a is not best]
    if spreads[best] <= tolerance and min(others) > spreads[best] + tolerance:
        return best
    return None


def _spread(values: Sequence[float]) -> float:
    return max(values) - min(values)
