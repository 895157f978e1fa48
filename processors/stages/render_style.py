"""What the original text looked like inside one OCR box: colours, stroke, glyph height, margins.

- background: the per-channel median of the box's border ring (OCR boxes pad the
  glyphs, so the border is ground, not ink);
- glyph pixels: those whose colour lies farther from the background than
  Otsu's threshold of those distances (and than the border's own noise);
- fill and stroke: the glyph pixels split into two colour clusters. The cluster
  that touches the background more is a stroke when its colour is not merely
  a blend of fill and background (anti-aliased edges are such blends: they lie
  on the segment between the two colours, a real outline lies off it or beyond
  the background). Without a stroke the fill is the median of the glyph pixels
  farthest from the background (the edges' blends would wash it out);
- glyph height and line count: the runs of rows that hold glyph pixels;
- ink margins: the columns left and right of the outermost glyph pixels (for
  the alignment of a box that stands alone, render_layout).

A box of more than MAX_SAMPLES pixels is read on an even grid: these figures do
not need every pixel, and a box over a whole 40 M pixel image would otherwise
take gigabytes of float copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

RGB = tuple[int, int, int]
MAX_SAMPLES = 1 << 20
CLUSTER_SAMPLES = 1 << 12  # two colour centres settle on a few thousand pixels
MIN_GLYPH_SHARE = 0.003  # fewer glyph pixels than this share of the box: a flat box, no text seen
STROKE_MIN_SHARE = 0.12  # each of fill and stroke holds at least this share of the glyph pixels
STROKE_MIN_DISTANCE = 60.0  # RGB distance between fill and stroke colours
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True, slots=True)
class GlyphStyle:
    fill: RGB
    background: RGB
    stroke: RGB | None = None
    stroke_width: int = 0
    glyph_height: float | None = None  # pixels per line of the original text; None when none was seen
    lines: int = 1
    ink_margins: tuple[float, float] | None = None  # (left, right) pixels between box and ink


def otsu_threshold(values: np.ndarray) -> float:
    """The threshold that best separates uint8 ``values`` into two classes (<= t, > t)."""
    histogram = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    weights = np.cumsum(histogram)
    means = np.cumsum(histogram * np.arange(256))
    total, total_mean = weights[-1], means[-1]
    between = (total_mean * weights - means * total) ** 2 / np.maximum(weights * (total - weights), 1e-9)
    return float(np.argmax(between))


def relative_luminance(colour: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0-255 channels)."""
    c = np.asarray(colour, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """WCAG 2 contrast ratio, 1 (none) to 21 (black on white)."""
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def border_colour(region: np.ndarray) -> tuple[RGB, np.ndarray]:
    """The median colour of the border ring of ``region`` (H x W x 3), and the ring's pixels."""
    h, w = region.shape[:2]
    ring = max(1, min(h, w) // 20)
    pixels = np.concatenate([region[:ring].reshape(-1, 3), region[h - ring:].reshape(-1, 3),
                             region[:, :ring].reshape(-1, 3), region[:, w - ring:].reshape(-1, 3)])
    return _rgb(np.median(pixels, axis=0)), pixels


def estimate_style(original: np.ndarray, rect: tuple[int, int, int, int]) -> GlyphStyle:
    """The look of the text inside ``rect`` (left, top, right, bottom) of the RGB ``original``."""
    left, top, right, bottom = rect
    whole = original[top:bottom, left:right]
    stride = max(1, math.ceil(math.sqrt(whole.shape[0] * whole.shape[1] / MAX_SAMPLES)))
    region = whole[::stride, ::stride].astype(np.float64)
    if region.size == 0:
        return GlyphStyle((0, 0, 0), (255, 255, 255))
    background, ring = border_colour(region)
    distance = np.linalg.norm(region - background, axis=2)
    noise = float(np.percentile(np.linalg.norm(ring - background, axis=1), 95))
    cut = max(otsu_threshold(np.clip(distance, 0, 255).astype(np.uint8)), noise + 10.0, 24.0)
    glyphs = distance > cut
    if glyphs.sum() < max(4, MIN_GLYPH_SHARE * glyphs.size):
        return GlyphStyle(_plain_contrast(background), background)
    fill, stroke, width = _fill_and_stroke(region, glyphs, distance, np.asarray(background, np.float64))
    height, lines = _line_height(glyphs)
    columns = np.flatnonzero(glyphs.any(axis=0))
    margins = (float(columns[0] * stride), float((glyphs.shape[1] - 1 - columns[-1]) * stride))
    return GlyphStyle(fill, background, stroke, width * stride if stroke else 0, height * stride, lines,
                      margins)


def _fill_and_stroke(region: np.ndarray, glyphs: np.ndarray, distance: np.ndarray,
                     background: np.ndarray) -> tuple[RGB, RGB | None, int]:
    pixels = region[glyphs]
    labels, centres = _two_means(pixels, background)
    shares = np.bincount(labels, minlength=2) / len(labels)
    if shares.min() >= STROKE_MIN_SHARE and np.linalg.norm(centres[0] - centres[1]) > STROKE_MIN_DISTANCE:
        # Glyph pixels with a ground neighbour. The seam between a fill and its stroke blends
        # through colours near the ground's; closing the mask first keeps that seam from
        # counting as ground.
        edge = _touches(glyphs, ~_closed(glyphs))[glyphs]
        touching = np.array([edge[labels == k].mean() for k in (0, 1)])
        outer = int(np.argmax(touching))
        fill_c, stroke_c = centres[1 - outer], centres[outer]
        if touching[outer] > 1.5 * touching[1 - outer] and not _is_blend(stroke_c, fill_c, background):
            thickness = (labels == outer).sum() / max(1, (edge & (labels == outer)).sum())
            return (_rgb(np.median(pixels[labels != outer], axis=0)),
                    _rgb(np.median(pixels[labels == outer], axis=0)), max(1, round(thickness - 0.5)))
    far = distance[glyphs]
    core = pixels[far >= np.percentile(far, 60)]
    return _rgb(np.median(core, axis=0)), None, 0


def _two_means(pixels: np.ndarray, background: np.ndarray, rounds: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Two colour clusters, seeded by the pixel farthest from the ground and the one farthest from that."""
    first = pixels[np.argmax(np.linalg.norm(pixels - background, axis=1))]
    second = pixels[np.argmax(np.linalg.norm(pixels - first, axis=1))]
    centres = np.stack([first, second])
    sample = pixels[::max(1, len(pixels) // CLUSTER_SAMPLES)]  # the centres settle on a sample

    def nearest(points: np.ndarray) -> np.ndarray:
        closer = ((points - centres[1]) ** 2).sum(axis=1) < ((points - centres[0]) ** 2).sum(axis=1)
        return closer.astype(np.intp)

    for _ in range(rounds):
        labels = nearest(sample)
        for k in (0, 1):
            if (labels == k).any():
                centres[k] = sample[labels == k].mean(axis=0)
    return nearest(pixels), centres


def _is_blend(colour: np.ndarray, fill: np.ndarray, background: np.ndarray) -> bool:
    """Whether ``colour`` lies near the segment from ``background`` to ``fill`` (an anti-aliased edge)."""
    span = fill - background
    length2 = float(span @ span)
    if length2 < 1.0:
        return False
    t = float((colour - background) @ span) / length2
    off = float(np.linalg.norm(colour - background - t * span))
    return 0.15 <= t <= 1.0 and off <= 0.35 * math.sqrt(length2)


def _touches(mask: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour in ``other`` (the image's edge does not count)."""
    near = np.zeros_like(mask)
    near[1:] |= other[:-1]
    near[:-1] |= other[1:]
    near[:, 1:] |= other[:, :-1]
    near[:, :-1] |= other[:, 1:]
    return mask & near


def _closed(mask: np.ndarray) -> np.ndarray:
    """``mask`` with gaps of a pixel or two filled (a 3 x 3 dilation, then erosion)."""
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    closed = image.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3))
    return np.asarray(closed) > 127


def _line_height(glyphs: np.ndarray) -> tuple[float, int]:
    """The median height of the runs of rows holding glyphs, and how many runs (lines) there are."""
    rows = glyphs.sum(axis=1) >= max(1, 0.01 * glyphs.shape[1])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rows.astype(np.int8), [0]])))
    runs = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]
    tallest = max(b - a for a, b in runs)
    merged = [runs[0]]
    for start, end in runs[1:]:  # a gap inside one line (the strokes of 三, of 二) is short
        if start - merged[-1][1] < 0.3 * tallest:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return float(np.median([b - a for a, b in merged])), len(merged)


def _plain_contrast(background: RGB) -> RGB:
    """Black or white, whichever stands out more from ``background``."""
    black, white = (0, 0, 0), (255, 255, 255)
    return black if contrast_ratio(black, background) >= contrast_ratio(white, background) else white


def _rgb(values: np.ndarray) -> RGB:
    r, g, b = (int(v) for v in np.clip(np.round(values), 0, 255))
    return (r, g, b)
