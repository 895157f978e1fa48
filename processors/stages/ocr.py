"""The ocr stage: fetch the task's image and detect its text with rapidocr-onnxruntime.

Output: the task's fields (``callback_url`` included) plus ``ocr_result`` in
the seed's form ``[[[x, y] x 4], [text, confidence]]``. OCR runs in a thread
pool (onnxruntime releases the GIL) so the event loop keeps reading and
committing. Tall images are read in overlapping horizontal bands: the detector
scales an image down to a bounded side, which would make the text of a
790 x 20000 page unreadable.

Memory is bounded by construction: rapidocr scales a short side up (x30 under
30 px, then to 736 px) and letterboxes wide images, so a 1 x 1280 strip became
an 883200 x 736 float32 array (7.3 GiB). Each band is handed to the engine
already fitted (processors.stages.ocr_fit): scaled down to the engine's longest side,
padded with white to 4:1 when longer, so none of its upscaling can grow past
736 x 5888 (MAX_DET_PIXELS); and the working size is checked before the
engine runs. Across tasks: after the fetch, before decoding, a task reserves
``memory_budget.ocr_bytes`` of the header's size from the worker's ``budget``
and holds it through OCR (the wait is the ``memory`` step).

The engine has ``threads`` OCR threads; the stage runs as many tasks at once
(processors.pipeline), so no task waits inside its handler (inside its
timeout) for a thread another task holds: the entries read ahead wait before
the handler, where no timeout runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from typing import Any

import numpy as np

from processors.images.fetch import ImageFetcher
from processors.images.memory_budget import MemoryBudget, Reservation, ocr_bytes
from processors.stages.ocr_fit import EngineGeometry, check_working_size, fit, fitted_band
from processors.stages.steps import Steps
from processors.stages.task import TranslateTask
from streams.errors import PermanentError
from streams.message import Message, Outgoing

Box = list[Any]  # [[[x, y] x 4], [text, confidence]]
BAND = 1280
OVERLAP = 160
PASSED_ON = ("callback_url",)


class OcrFailed(PermanentError):
    """The OCR engine could not read the image (or would need more memory than it may use)."""


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


class OcrEngine:
    """rapidocr-onnxruntime, one engine per worker thread (imported on first use)."""

    def __init__(self, threads: int = 1, intra_op_threads: int = 1) -> None:
        self.threads = threads  # OCRs that run at once; the ocr stage's concurrency
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ocr")
        self._local = threading.local()
        self._intra = intra_op_threads

    def _engine(self) -> Any:
        if not hasattr(self._local, "engine"):
            from rapidocr_onnxruntime import RapidOCR

            # onnxruntime would start a thread per core for each engine; on a machine shared
            # with Triton that oversubscribes the CPU (measured in docs/BENCHMARKS.md).
            self._local.engine = RapidOCR(intra_op_num_threads=self._intra, inter_op_num_threads=1)
        return self._local.engine

    def read_sync(self, rgb: np.ndarray) -> list[Box]:
        """The boxes of ``rgb`` (H, W, 3 uint8) in its own coordinates; OcrFailed if a band
        would make the engine allocate past ocr_fit.MAX_DET_PIXELS."""
        engine = self._engine()
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

    async def read(self, rgb: np.ndarray, *, held: Reservation | None = None) -> list[Box]:
        """``read_sync`` in an OCR thread; with ``held``, its memory stays reserved until the thread
        ends, even if this call is cancelled first (a thread cannot be)."""
        future = asyncio.get_running_loop().run_in_executor(self._pool, self.read_sync, rgb)
        try:
            return await (held.hold(future) if held is not None else future)
        except OcrFailed:
            raise
        except Exception as error:
            raise OcrFailed(f"OCR failed on this image: {error}") from error

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class OcrProcessor:
    """Detect text in one task's image; emit the task with its OCR result."""

    def __init__(self, images: ImageFetcher, engine: OcrEngine, steps: Steps,
                 mirror_lists: Sequence[str] = (), *, budget: MemoryBudget | None = None) -> None:
        self._images, self._engine, self._steps = images, engine, steps
        self._mirrors = tuple(mirror_lists)
        self.budget = budget if budget is not None else MemoryBudget(0)

    async def __call__(self, message: Message) -> list[Outgoing]:
        task = TranslateTask.from_payload(message.payload)
        async with self._steps.step("fetch"):
            encoded = await self._images.fetch_encoded(task.image_url)
        async with AsyncExitStack() as stack:
            need = ocr_bytes(encoded.width, encoded.height)
            async with self._steps.step("memory"):
                held = await stack.enter_async_context(self.budget.reserve(need))
            async with self._steps.step("decode"):
                image = await held.in_thread(self._images.decode_sync, encoded)
            async with self._steps.step("ocr"):
                boxes = await self._engine.read(image.pixels, held=held)
            del image  # the pixels go before the bytes they were reserved with
        legacy = {**task.as_payload(), "ocr_result": boxes}  # ocr:results holds exactly these (CONTRACTS.md)
        result = {**legacy, **_passed_on(message.payload)}
        return [Outgoing(result), *(Outgoing(legacy, list=key) for key in self._mirrors)]


def _passed_on(payload: Any) -> dict[str, Any]:
    """The optional task fields later stages need, as sent: ``callback_url`` (the results
    stage validates it, so a bad one becomes an error record there, not a silent drop)."""
    return {name: payload[name] for name in PASSED_ON if payload.get(name) is not None}
