"""The operate stage: remove the text, translate it, render the translation, store the image.

mask from the OCR boxes (dilated) -> inference on Triton (inpaint_short or
inpaint_long by ``is_long``; the client pre- and postprocesses, and only masked
pixels change) -> translation of the box texts (one call per image) ->
rendering into the boxes -> store -> the success record
``{request_id, image_id, image_url}``. CPU-heavy steps (mask, render, PNG
encoding) run in threads; at most ``post_concurrency`` renders run at once (the
seed's postprocessing queue of 50). Each step names itself in its errors.

Memory: after the fetch, before a pixel is decoded, a task reserves from the
worker's ``budget`` what it will hold at its peak (``memory_budget.operate_bytes``
of the header's size) and keeps it through decode, inference, render and the
PNG encode of ``store``; the wait is the ``memory`` step. So the tasks of one
worker hold at most the budget, however many run at once (docs/MEMORY.md).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Protocol

import numpy as np

from processors.images.fetch import ImageFetcher
from processors.images.memory_budget import MemoryBudget, Reservation, operate_bytes
from processors.images.storage import LocalStore, encode_png
from processors.stages.mask import TextBox, build_mask, parse_ocr_result
from processors.stages.render import Placement, Renderer
from processors.stages.steps import Steps
from processors.stages.task import TranslateTask
from processors.translate.translator import Translator, current_task
from streams.message import Message, Outgoing


class Inpainter(Protocol):
    async def inpaint(self, image: np.ndarray, mask: np.ndarray, is_long: bool) -> np.ndarray: ...


class OperateProcessor:
    """One task with its OCR result in; one success record out (or a raised, named error)."""

    def __init__(self, images: ImageFetcher, inpainter: Inpainter, translator: Translator,
                 renderer: Renderer, store: LocalStore, steps: Steps, *, dilation: int = 3,
                 post_concurrency: int = 50, budget: MemoryBudget | None = None) -> None:
        self._images, self._inpainter, self._translator = images, inpainter, translator
        self._renderer, self._store, self._steps = renderer, store, steps
        self._dilation = dilation
        self.budget = budget if budget is not None else MemoryBudget(0)
        self._post = asyncio.Semaphore(post_concurrency)

    async def __call__(self, message: Message) -> list[Outgoing]:
        task = TranslateTask.from_payload(message.payload)
        boxes = parse_ocr_result(message.payload.get("ocr_result"))
        async with self._steps.step("fetch"):
            encoded = await self._images.fetch_encoded(task.image_url)
        async with AsyncExitStack() as stack:
            need = operate_bytes(encoded.width, encoded.height)
            async with self._steps.step("memory"):
                held = await stack.enter_async_context(self.budget.reserve(need))
            async with self._steps.step("decode"):
                original = (await held.in_thread(self._images.decode_sync, encoded)).pixels
            result = await self._translated(task, original, boxes, held) if boxes else original
            async with self._steps.step("store"):
                png = await held.in_thread(encode_png, result)
                del original, result  # the pixels go before the bytes they were reserved with
                url = await self._store.put(task.request_id, task.image_id, png)
        success = {"request_id": task.request_id, "image_id": task.image_id, "image_url": url}
        callback = message.payload.get("callback_url")
        return [Outgoing({**success, "callback_url": callback} if callback else success)]

    async def _translated(self, task: TranslateTask, original: np.ndarray,
                          boxes: list[TextBox], held: Reservation) -> np.ndarray:
        height, width = original.shape[:2]
        async with self._steps.step("mask"):
            mask = await held.in_thread(build_mask, height, width, boxes, self._dilation)
        async with self._steps.step("inference"):
            cleaned = await self._inpainter.inpaint(original, mask, task.is_long)
        async with self._steps.step("translation"):
            token = current_task.set(task.request_id)  # the translator's per-task log line names it
            try:
                texts = await self._translator.translate([box.text for box in boxes])
            finally:
                current_task.reset(token)
        placements = [Placement(box.points, text) for box, text in zip(boxes, texts, strict=True)]
        async with self._post, self._steps.step("render"):
            return await held.in_thread(self._renderer.render, cleaned, original, placements)
