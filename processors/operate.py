"""The operate stage: remove the text, translate it, render the translation, store the image.

mask from the OCR boxes (dilated) -> inference on Triton (inpaint_short or
inpaint_long by ``is_long``; the client pre- and postprocesses, and only masked
pixels change) -> translation of the box texts (one call per image) ->
rendering into the boxes -> store -> the success record
``{request_id, image_id, image_url}``. CPU-heavy steps (mask, render, PNG
encoding) run in threads; at most ``post_concurrency`` renders run at once (the
seed's postprocessing queue of 50). Each step names itself in its errors.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import numpy as np

from processors.images import ImageFetcher
from processors.mask import TextBox, build_mask, parse_ocr_result
from processors.render import Placement, Renderer
from processors.steps import Steps
from processors.storage import LocalStore
from processors.task import TranslateTask
from processors.translate import Translator
from streams.message import Message, Outgoing


class Inpainter(Protocol):
    async def inpaint(self, image: np.ndarray, mask: np.ndarray, is_long: bool) -> np.ndarray: ...


class OperateProcessor:
    """One task with its OCR result in; one success record out (or a raised, named error)."""

    def __init__(self, images: ImageFetcher, inpainter: Inpainter, translator: Translator,
                 renderer: Renderer, store: LocalStore, steps: Steps, *, dilation: int = 3,
                 post_concurrency: int = 50) -> None:
        self._images, self._inpainter, self._translator = images, inpainter, translator
        self._renderer, self._store, self._steps = renderer, store, steps
        self._dilation = dilation
        self._post = asyncio.Semaphore(post_concurrency)

    async def __call__(self, message: Message) -> list[Outgoing]:
        task = TranslateTask.from_payload(message.payload)
        boxes = parse_ocr_result(message.payload.get("ocr_result"))
        async with self._steps.step("fetch"):
            original = (await self._images.fetch(task.image_url)).pixels
        result = await self._translated(task, original, boxes) if boxes else original
        async with self._steps.step("store"):
            url = await self._store.put(task.request_id, task.image_id, result)
        success = {"request_id": task.request_id, "image_id": task.image_id, "image_url": url}
        callback = message.payload.get("callback_url")
        return [Outgoing({**success, "callback_url": callback} if callback else success)]

    async def _translated(self, task: TranslateTask, original: np.ndarray,
                          boxes: list[TextBox]) -> np.ndarray:
        height, width = original.shape[:2]
        async with self._steps.step("mask"):
            mask = await asyncio.to_thread(build_mask, height, width, boxes, self._dilation)
        async with self._steps.step("inference"):
            cleaned = await self._inpainter.inpaint(original, mask, task.is_long)
        async with self._steps.step("translation"):
            texts = await self._translator.translate([box.text for box in boxes])
        placements = [Placement(box.points, text) for box, text in zip(boxes, texts, strict=True)]
        async with self._post, self._steps.step("render"):
            return await asyncio.to_thread(self._renderer.render, cleaned, original, placements)
