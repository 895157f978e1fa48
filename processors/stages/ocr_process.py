"""The ocr stage's OCR, as it runs in a worker process of the stage's KillablePool.

``load`` is the pool's initializer: it builds this process's one rapidocr engine
(the import and the models, ~1 s and ~140 MiB, once per process). ``read`` is what
the pool runs: the boxes of one image, sent as raw bytes with its shape and dtype
(streams.killable.frames). The engine is this module's state because a worker
process runs one call at a time and lives only to run them: it is the process's
global, not the program's. ``read_boxes`` is the same work in any process
(OcrEngine.read_sync, the memory measurements).

Tall images are read in overlapping horizontal bands: the detector scales an image
down to a bounded side, which would make the text of a 790 x 20000 page unreadable.
Each band is handed to the engine already fitted (processors.stages.ocr_fit).
Imports only numpy, OpenCV and rapidocr: a worker process loads nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from processors.stages.ocr_fit import EngineGeometry, check_working_size, fit, fitted_band
from streams.errors import PermanentError

Box = list[Any]  # [[[x, y] x 4], [text, confidence]]
BAND = 1280
OVERLAP = 160

_engines: list[Any] = []  # this worker process's engine, once load() ran


class OcrFailed(PermanentError):
    """The OCR engine could not read the image (or would need more memory than it may use)."""


def new_engine(intra_op_threads: int = 1) -> Any:
    from rapidocr_onnxruntime import RapidOCR

    # onnxruntime would start a thread per core for each engine; on a machine shared
    # with Triton that oversubscribes the CPU (measured in docs/BENCHMARKS.md).
    return RapidOCR(intra_op_num_threads=intra_op_threads, inter_op_num_threads=1)


def load(intra_op_threads: int) -> None:
    """The pool's initializer: this process's engine."""
    _engines[:] = [new_engine(intra_op_threads)]


def read(rgb: np.ndarray) -> list[Box]:
    """What the pool runs: ``read_boxes`` with this process's engine."""
    if not _engines:
        raise RuntimeError("ocr_process.read before load: the pool's initializer did not run")
    return read_boxes(_engines[0], rgb)


def bands(height: int, width: int) -> list[tuple[int, int]]:
    """(top, bottom) of the bands to read; one band unless the image is tall."""
    if height <= max(BAND, 2 * width):
        return [(0, height)]
    starts = range(0, height - OVERLAP, BAND - OVERLAP)
    return [(top, min(height, top + BAND)) for top in starts]


def keep(box: Box, top: int, bottom: int, height: int) -> bool:
    """Of two overlapping bands, the upper one owns a box centred above the overlap's middle."""
    centre = sum(p[1] for p in box[0]) / 4
    upper_limit = bottom - OVERLAP / 2 if bottom < height else height
    lower_limit = top + OVERLAP / 2 if top > 0 else 0
    return lower_limit <= centre < upper_limit


def read_boxes(engine: Any, rgb: np.ndarray) -> list[Box]:
    """The boxes of ``rgb`` (H, W, 3 uint8) in its own coordinates; OcrFailed if a band
    would make the engine allocate past ocr_fit.MAX_DET_PIXELS."""
    geometry = EngineGeometry.of(engine)
    height, width = rgb.shape[:2]
    found: list[Box] = []
    for top, bottom in bands(height, width):
        band = rgb[top:bottom]
        shape = fit(bottom - top, width, geometry)
        try:
            check_working_size(shape, geometry)
        except ValueError as error:
            raise OcrFailed(str(error)) from None
        result, _ = engine(fitted_band(band, shape))
        sx, sy, tall = width / shape.width, (bottom - top) / shape.height, bottom - top
        for points, text, score in result or []:
            corners = [[min(float(x) * sx, width), min(float(y) * sy, tall) + top] for x, y in points]
            box = [corners, [str(text), float(score)]]
            if keep(box, top, bottom, height):
                found.append(box)
    return found
