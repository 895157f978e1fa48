"""``callback_url`` survives ocr -> operate (processors called directly, on a real image; Triton stood in for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from prometheus_client import CollectorRegistry

from processors import legacy
from processors.images.fetch import ImageFetcher, ImageSettings
from processors.images.storage import LocalStore
from processors.local.samples import find_cjk_font, product_image
from processors.stages.ocr import OcrEngine, OcrProcessor
from processors.stages.operate import OperateProcessor
from processors.stages.render import Renderer
from processors.stages.steps import Steps
from processors.translate.glossary import load_glossary
from processors.translate.metrics import TranslateMetrics
from processors.translate.translator import GlossaryTranslator
from streams.message import Message

HOOK = "https://hooks.example/done?task=1"


class EraseInpainter:
    """Stands in for Triton: paints the masked pixels white, as a text remover would."""

    async def inpaint(self, image: np.ndarray, mask: np.ndarray, is_long: bool) -> np.ndarray:
        return np.where(mask[..., None] > 0, np.uint8(255), image)


@pytest.fixture
async def stages(tmp_path: Path) -> Any:
    image_path = tmp_path / "in" / "page.png"
    image_path.parent.mkdir()
    Image.fromarray(product_image(is_long=False).image).save(image_path)
    registry = CollectorRegistry()
    steps = Steps(registry)
    async with ImageFetcher(ImageSettings(file_roots=(str(image_path.parent),))) as images:
        engine = OcrEngine()
        ocr = OcrProcessor(images, engine, steps, mirror_lists=[legacy.OCR_RESULTS])
        translator = GlossaryTranslator(load_glossary(), TranslateMetrics(registry, "glossary"))
        store = LocalStore(tmp_path / "out", "http://127.0.0.1:8080")
        operate = OperateProcessor(images, EraseInpainter(), translator, Renderer(str(find_cjk_font())), store, steps)
        yield ocr, operate, image_path.as_uri()
        engine.close()


def task(url: str, **extra: Any) -> Message:
    payload = {"request_id": "r1", "image_url": url, "image_id": "i1", "is_long": False, **extra}
    return Message(id="1-0", stream="tasks", payload=payload, request_id="r1")


async def test_a_callback_url_rides_from_the_task_through_ocr_to_the_success_record(stages: Any) -> None:
    ocr, operate, url = stages

    to_ocr_stream, to_ocr_list = await ocr(task(url, callback_url=HOOK))
    assert to_ocr_stream.payload["callback_url"] == HOOK and to_ocr_stream.payload["ocr_result"]
    [success] = await operate(Message(id="2-0", stream="ocr", payload=to_ocr_stream.payload, request_id="r1"))

    assert success.payload["callback_url"] == HOOK
    assert set(success.payload) == {"request_id", "image_id", "image_url", "callback_url"}
    assert legacy.success_contract(success.payload).keys() == {"request_id", "image_id", "image_url"}
    assert to_ocr_list.list == legacy.OCR_RESULTS and "callback_url" not in to_ocr_list.payload


async def test_a_task_without_a_callback_url_gets_none_added_on_the_way(stages: Any) -> None:
    ocr, operate, url = stages

    to_ocr_stream, _ = await ocr(task(url))
    [success] = await operate(Message(id="2-0", stream="ocr", payload=to_ocr_stream.payload, request_id="r1"))

    assert "callback_url" not in to_ocr_stream.payload and "callback_url" not in success.payload
