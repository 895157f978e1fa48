"""Fit an OCR band to rapidocr's resizing, so the engine's working arrays stay bounded.

rapidocr-onnxruntime 1.4.4 resizes what it is given, in this order
(``RapidOCR.preprocess``, ``maybe_add_letterbox``, ``DetPreProcess.resize``):

```
longest side > max_side_len (2000)        scale down to 2000            (sides rounded to 32)
shortest side < min_side_len (30)         scale UP until it is 30       (x30 for a 1 px side)
height <= min_height (30) or w/h > 8      pad the height to w/4 (black)
shortest side < limit_side_len (736)      scale UP until it is 736      (detector input, float32)
```
The two upscales multiply: a 1 x 1280 image became 38400 x 32, then
883200 x 736 x 3 float32 (7.3 GiB, with a float64 copy on the way). ``fit``
picks the size we hand over instead: scaled down (area averaging) until the
longest side is at most ``max_side_len``, then padded with white on the
right and bottom to at least 32 px, and a band longer than 4:1 (tall) or 8:1
(wide) to 4:1, the engine's own letterbox target. On such an input the engine
neither scales down nor letterboxes, its first upscale is a no-op, and its
detector input is at most 736 x 5888 (a wide band just under 8:1), 736 x 2944
(4:1) or 2016 x 2016 (no upscale): ``MAX_DET_PIXELS``. A 15 x 30000 strip
padded to 8:1 instead peaked at 904 MiB and took 50 s (at 4:1: about 500 MiB,
28 s; docs/MEMORY.md).
Padding adds no text, and boxes map back by the scale alone (the padding is
after the pixels).

``det_shape`` replays the engine's arithmetic (tests pin it against
rapidocr's own functions); ``check_working_size`` refuses a band whose
detector input would exceed the bound, which can only happen if rapidocr's
configuration changes under us.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

MAX_DET_PIXELS = 4_500_000  # 736 x 5888 = 4.33 M and 2016 x 2016 = 4.06 M fit; 52 MiB as float32 x 3
MIN_SIDE = 32  # a multiple of 32 over min_side_len and min_height: rapidocr's rounding keeps it
WHITE = 255


@dataclass(frozen=True, slots=True)
class EngineGeometry:
    """The resizing rules of a RapidOCR instance (defaults: rapidocr-onnxruntime 1.4.4's config.yaml)."""

    max_side_len: int = 2000
    min_side_len: int = 30
    min_height: int = 30
    width_height_ratio: float = 8
    limit_side_len: int = 736
    limit_type: str = "min"

    @classmethod
    def of(cls, engine: Any) -> EngineGeometry:
        """The rules ``engine`` (a RapidOCR) was configured with."""
        det = engine.text_det
        return cls(int(engine.max_side_len), int(engine.min_side_len), int(engine.min_height),
                   float(engine.width_height_ratio), int(det.limit_side_len), str(det.limit_type))


@dataclass(frozen=True, slots=True)
class Fit:
    """A band scaled to ``height`` x ``width``, then padded to ``padded_height`` x ``padded_width``."""

    height: int
    width: int
    padded_height: int
    padded_width: int


def fit(height: int, width: int, geometry: EngineGeometry) -> Fit:
    """The size to hand the engine a ``height`` x ``width`` band at (see the module docstring)."""
    scale = min(1.0, geometry.max_side_len / max(height, width))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    ratio = geometry.width_height_ratio if geometry.width_height_ratio > 0 else 8
    floor = max(MIN_SIDE, geometry.min_side_len, geometry.min_height + 1)
    padded_h, padded_w = max(h, floor), max(w, floor)
    if padded_w > ratio * padded_h:  # the engine would letterbox it to 4:1; do it, in white
        padded_h = math.ceil(padded_w / (ratio / 2))
    elif padded_h > (ratio / 2) * padded_w:  # the engine has no letterbox for tall ones: the same 4:1
        padded_w = math.ceil(padded_h / (ratio / 2))
    return Fit(h, w, padded_h, padded_w)


def _round32(value: float) -> int:
    return int(round(value / 32) * 32)


def _scaled(h: int, w: int, ratio: float) -> tuple[int, int]:
    return _round32(int(h * ratio)), _round32(int(w * ratio))


def det_shape(height: int, width: int, geometry: EngineGeometry) -> tuple[int, int]:
    """(height, width) of the detector input rapidocr builds for a ``height`` x ``width`` image."""
    g, h, w = geometry, height, width
    if max(h, w) > g.max_side_len:
        h, w = _scaled(h, w, g.max_side_len / max(h, w))
    if 0 < min(h, w) < g.min_side_len:
        h, w = _scaled(h, w, g.min_side_len / min(h, w))
    if min(h, w) < 1:
        return (0, 0)  # rapidocr raises (or finds nothing): no detector input
    if g.width_height_ratio != -1 and (h <= g.min_height or w / h > g.width_height_ratio):
        h += 2 * int(abs(max(int(w / g.width_height_ratio), g.min_height) * 2 - h) / 2)
    if g.limit_type == "min":
        ratio = g.limit_side_len / min(h, w) if min(h, w) < g.limit_side_len else 1.0
    else:
        longest = max(h, w)
        limit = 960 if longest < 960 else 1500 if longest < 1500 else 2000
        ratio = limit / longest if longest > limit else 1.0
    return _scaled(h, w, ratio)


def check_working_size(shape: Fit, geometry: EngineGeometry) -> None:
    """ValueError if the engine's detector input for ``shape`` would exceed MAX_DET_PIXELS."""
    h, w = det_shape(shape.padded_height, shape.padded_width, geometry)
    if h * w > MAX_DET_PIXELS:
        raise ValueError(
            f"the OCR engine would build a {w} x {h} detector input for a {shape.padded_width} x "
            f"{shape.padded_height} band, over the bound of {MAX_DET_PIXELS} pixels; rapidocr's resizing "
            f"({geometry}) differs from what processors/stages/ocr_fit.py expects"
        )


def fitted_band(band: np.ndarray, shape: Fit) -> np.ndarray:
    """``band`` (h, w, 3 RGB uint8) as the engine's input: BGR, scaled and padded to ``shape``."""
    if band.shape[:2] != (shape.height, shape.width):
        size = (shape.width, shape.height)
        band = cv2.resize(np.ascontiguousarray(band), size, interpolation=cv2.INTER_AREA)
    out = np.full((shape.padded_height, shape.padded_width, 3), WHITE, np.uint8)
    out[: shape.height, : shape.width] = band[:, :, ::-1]
    return out
