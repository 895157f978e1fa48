"""The ocr stage: fetch the task's image and detect its text with rapidocr-onnxruntime.

Output: the task's fields (``callback_url`` included) plus ``ocr_result`` in
the seed's form ``[[[x, y] x 4], [text, confidence]]``. OCR runs in worker
processes (a streams.killable.KillablePool; the OCR itself and its banding are
processors.stages.ocr_process), so the event loop keeps reading and committing,
and an OCR past the stage's timeout is stopped for real: when the watchdog
cancels the handler, the process running the OCR is killed (its CPU and its
memory are back at once) and a fresh one, models loaded by the pool's
initializer, takes its slot. The image goes to the process as raw bytes with
its shape and dtype; the boxes come back as JSON.

Memory is bounded by construction: rapidocr scales a short side up (x30 under
30 px, then to 736 px) and letterboxes wide images, so a 1 x 1280 strip became
an 883200 x 736 float32 array (7.3 GiB). Each band is handed to the engine
already fitted (processors.stages.ocr_fit): scaled down to the engine's longest side,
padded with white to 4:1 when longer, so none of its upscaling can grow past
736 x 5888 (MAX_DET_PIXELS); and the working size is checked before the
engine runs. Across tasks: after the fetch, before decoding, a task reserves
``memory_budget.ocr_bytes`` of the header's size from the worker's ``budget``
and holds it through OCR (the wait is the ``memory`` step).

The engine has ``threads`` OCR processes (``MILLSTREAM_OCR_THREADS``: OCRs at
once per worker; the name is from when they were threads); the stage runs as
many tasks at once (processors.pipeline), so no task waits inside its handler
(inside its timeout) for a process another task holds: the entries read ahead
wait before the handler, where no timeout runs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import numpy as np

from processors.images.fetch import ImageFetcher
from processors.images.memory_budget import MemoryBudget, Reservation, ocr_bytes
from processors.stages import ocr_process
from processors.stages.ocr_process import BAND, OVERLAP, Box, OcrFailed, bands, keep
from processors.stages.steps import Steps
from processors.stages.task import TranslateTask, level_of
from streams.errors import HardTimeout, PermanentError, RemoteError, WorkerLost
from streams.killable import KillablePool
from streams.message import Message, Outgoing

__all__ = ["BAND", "OVERLAP", "Box", "OcrEngine", "OcrFailed", "OcrProcessor", "bands", "keep"]
PASSED_ON = ("callback_url",)


class OcrEngine:
    """rapidocr-onnxruntime in ``threads`` worker processes, each loading its engine once.

    ``read`` runs one OCR in a process; ``read_sync`` runs it in the calling process
    (its own engine, loaded on first use), for tools and tests. ``timeout``, if given,
    bounds one OCR's time in its process (HardTimeout past it); the stage's timeout
    bounds it anyway, since a cancelled ``read`` kills its process.
    """

    def __init__(self, threads: int = 1, intra_op_threads: int = 1, *, timeout: float | None = None) -> None:
        self.threads = threads  # OCRs that run at once; the ocr stage's concurrency
        self.timeout = timeout
        self._pool = KillablePool(threads, ocr_process.load, [intra_op_threads])
        self._intra = intra_op_threads
        self._local = threading.local()  # read_sync's engines: one per calling thread

    def _engine(self) -> Any:
        if not hasattr(self._local, "engine"):
            self._local.engine = ocr_process.new_engine(self._intra)
        return self._local.engine

    def read_sync(self, rgb: np.ndarray) -> list[Box]:
        """The boxes of ``rgb`` (H, W, 3 uint8), OCRed in this process (ocr_process.read_boxes)."""
        return ocr_process.read_boxes(self._engine(), rgb)

    async def read(self, rgb: np.ndarray, *, held: Reservation | None = None) -> list[Box]:
        """The boxes of ``rgb``, OCRed in a worker process. A timeout or a lost process is
        retryable (HardTimeout, WorkerLost); what the engine raised is OcrFailed (permanent).
        ``held`` is accepted for the callers of the thread version: a process is killed
        when the call is cancelled, so its memory needs no holding past the call."""
        try:
            boxes: list[Box] = await self._pool.run(ocr_process.read, rgb, timeout=self.timeout)
        except (HardTimeout, WorkerLost):
            raise
        except PermanentError as refused:  # OcrFailed in the process: a band too large to read
            raise OcrFailed(getattr(refused, "message", str(refused))) from None
        except RemoteError as error:
            raise OcrFailed(f"OCR failed on this image: {error}") from None
        return boxes

    async def start(self) -> None:
        """Start the OCR processes now (else the first task waits for them)."""
        await self._pool.start()

    def close(self) -> None:
        """Kill the OCR processes (synchronous; ``aclose`` also waits until they are reaped)."""
        self._pool.kill()

    async def aclose(self) -> None:
        await self._pool.aclose()


class OcrProcessor:
    """Detect text in one task's image; emit the task with its OCR result."""

    def __init__(self, images: ImageFetcher, engine: OcrEngine, steps: Steps,
                 mirror_lists: Sequence[str] = (), *, budget: MemoryBudget | None = None) -> None:
        self._images, self._engine, self._steps = images, engine, steps
        self._mirrors = tuple(mirror_lists)
        self.budget = budget if budget is not None else MemoryBudget(0)

    async def __call__(self, message: Message) -> list[Outgoing]:
        task = TranslateTask.from_payload(message.payload)
        level = level_of(message.payload, message.priority)
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
        mirrored = [Outgoing(legacy, list=key) for key in self._mirrors]
        return [Outgoing(result, priority=level.label), *mirrored]


def _passed_on(payload: Any) -> dict[str, Any]:
    """The optional task fields later stages need, as sent: ``callback_url`` (the results
    stage validates it, so a bad one becomes an error record there, not a silent drop)."""
    return {name: payload[name] for name in PASSED_ON if payload.get(name) is not None}
