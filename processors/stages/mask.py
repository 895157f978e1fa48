"""The text mask, 255 where text must be removed: the glyph pixels of each OCR box.

Given the image, each box is searched for its glyphs: the background under the
text is estimated by a median filter wider than the strokes (a median keeps an
object's straight edges and drops thin strokes), pixels that differ from it by
more than an Otsu threshold (never under the box rim's own noise) are ink, and
the ink is grown by a margin from its stroke width, which covers the
anti-aliased fringe. Only those pixels are refilled, so an object's edge that a
box crosses stays as it was outside the glyphs. A box where no ink stands out,
or where "ink" fills most of the box (text on a busy texture), is masked whole:
residue costs more than a wider fill. Without the image every box is masked
whole, grown by ``dilation``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from streams.errors import InvalidPayload

Uint8 = np.ndarray[Any, np.dtype[np.uint8]]

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class TextBox:
    points: tuple[Point, Point, Point, Point]
    text: str
    confidence: float


def parse_ocr_result(value: Any) -> list[TextBox]:
    """Boxes from the seed's ``[[[x, y] x 4], [text, confidence]]`` form, or InvalidPayload."""
    if not isinstance(value, list):
        raise InvalidPayload(f"ocr_result must be a list of [[[x, y] x 4], [text, confidence]], "
                             f"got {value!r:.80}")
    boxes = []
    for n, item in enumerate(value):
        try:
            points, (text, confidence) = item
            corners = tuple((float(x), float(y)) for x, y in points)
            if len(corners) != 4 or not isinstance(text, str):
                raise ValueError("need 4 points and a text")
            if not all(math.isfinite(c) for corner in corners for c in corner):
                raise ValueError("coordinates must be finite numbers")
            boxes.append(TextBox(corners, text, float(confidence)))  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            problem = f"ocr_result[{n}] is not [[[x, y] x 4], [text, confidence]]: {error}"
            raise InvalidPayload(problem) from None
    return boxes


def build_mask(height: int, width: int, boxes: Sequence[TextBox], dilation: int = 3,
               image: Uint8 | None = None) -> Uint8:
    """(H, W) uint8 mask: the glyphs of each box when ``image`` (H, W, 3) is given
    (see the module docstring), else each box polygon filled, grown by ``dilation``
    pixels on each side."""
    if image is not None:
        if image.shape[:2] != (height, width):
            raise ValueError(f"image {image.shape[:2]} does not match the mask's {(height, width)}")
        return glyph_mask(image, boxes, dilation)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for box in boxes:
        draw.polygon(list(box.points), fill=255)
    if dilation > 0:
        canvas = canvas.filter(ImageFilter.MaxFilter(2 * dilation + 1))
    return np.asarray(canvas)


def glyph_mask(image: Uint8, boxes: Sequence[TextBox], dilation: int = 3) -> Uint8:
    """(H, W) uint8 mask of the glyph pixels of every box, with margins (module docstring)."""
    height, width = image.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    for box in boxes:
        found = _box_glyphs(image, box, dilation)
        if found is not None:
            (top, left), part = found
            view = mask[top : top + part.shape[0], left : left + part.shape[1]]
            np.maximum(view, part, out=view)
    return mask


def _box_glyphs(image: Uint8, box: TextBox, dilation: int) -> tuple[tuple[int, int], Uint8] | None:
    """The mask of one box's glyphs over its bounding rectangle (grown by the margin), and
    the rectangle's top-left corner; None for a box wholly outside the image."""
    height, width = image.shape[:2]
    xs, ys = [x for x, _ in box.points], [y for _, y in box.points]
    pad = dilation + MAX_MARGIN
    left, top = max(0, math.floor(min(xs)) - pad), max(0, math.floor(min(ys)) - pad)
    right, bottom = min(width, math.ceil(max(xs)) + pad + 1), min(height, math.ceil(max(ys)) + pad + 1)
    if right <= left or bottom <= top:
        return None
    inside = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(inside).polygon([(x - left, y - top) for x, y in box.points], fill=255)
    polygon = np.asarray(inside) > 0
    if not polygon.any():
        return None
    crop = image[top:bottom, left:right]
    ink = _ink(crop, polygon)
    if ink is None:
        whole = inside.filter(ImageFilter.MaxFilter(2 * dilation + 1)) if dilation > 0 else inside
        return (top, left), np.asarray(whole)
    margin = _margin(ink)
    grown = Image.fromarray(ink.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * margin + 1))
    return (top, left), np.asarray(grown)


MIN_CONTRAST = 24.0  # ink differs from the background by at least this (max over channels)
MAX_INK_SHARE = 0.7  # "ink" over more of the box than this is texture, not text
MAX_MARGIN = 6


def _ink(crop: Uint8, polygon: np.ndarray[Any, np.dtype[np.bool_]]) -> np.ndarray[Any, Any] | None:
    """Pixels of the box that stand out from the background under the text, or None
    when the box has no clear ink (or is mostly "ink")."""
    rows = np.flatnonzero(polygon.any(1))
    text_height = int(rows[-1] - rows[0] + 1)
    size = max(7, (text_height // 2) | 1)
    median = ImageFilter.MedianFilter(size)
    background = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).filter(median))
    difference = np.abs(crop.astype(np.int16) - background.astype(np.int16)).max(2)
    values = difference[polygon]
    rim = difference[polygon & ~_eroded(polygon, 2)]
    floor = max(MIN_CONTRAST, 3.0 * float(np.percentile(rim, 90)) if rim.size else 0.0)
    threshold = max(floor, _otsu(values))
    ink = (difference > threshold) & polygon
    share = ink.sum() / polygon.sum()
    if share == 0 or share > MAX_INK_SHARE:
        return None
    return ink


def _eroded(region: np.ndarray[Any, Any], radius: int) -> np.ndarray[Any, Any]:
    image = Image.fromarray(region.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(2 * radius + 1))
    return np.asarray(image) > 0


def _otsu(values: np.ndarray[Any, Any]) -> float:
    """The threshold that best splits ``values`` (0..255) into two classes."""
    counts = np.bincount(np.clip(values, 0, 255).astype(np.int64), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight = np.cumsum(counts)
    total = weight[-1]
    mean = np.cumsum(counts * levels)
    between = (mean[-1] * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1e-9)
    return float(np.argmax(between[:-1]))


def _margin(ink: np.ndarray[Any, Any]) -> int:
    """Half the stroke width (2 x area / outline length of the ink), plus one pixel for
    the anti-aliased fringe."""
    outline = ink & ~_eroded(ink, 1)
    stroke = 2.0 * ink.sum() / max(int(outline.sum()), 1)
    return int(min(MAX_MARGIN, 1 + stroke // 4))
