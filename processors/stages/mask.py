"""The text mask: OCR boxes filled and dilated, 255 where text must be removed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from streams.errors import InvalidPayload

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


def build_mask(height: int, width: int, boxes: Sequence[TextBox], dilation: int = 3) -> np.ndarray:
    """(H, W) uint8 mask: each box polygon filled, grown by ``dilation`` pixels on each side."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for box in boxes:
        draw.polygon(list(box.points), fill=255)
    if dilation > 0:
        canvas = canvas.filter(ImageFilter.MaxFilter(2 * dilation + 1))
    return np.asarray(canvas)
