"""The operate and ocr processors reserve memory from the header's size, and a burst stays within the budget.

The burst runs the real OperateProcessor (file:// fetch, decode, mask, render,
PNG encode, store; Triton replaced by an eraser) in a fresh interpreter whose
address space is capped (tests/integration/burst_memory.py): with the budget
it finishes; without it (budget 0, unbounded) the same burst fails.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from prometheus_client import CollectorRegistry

from processors.images.decode import header_size
from processors.images.errors import ImageTooManyPixels, NotAnImage, TruncatedImage
from processors.images.fetch import ImageFetcher, ImageSettings
from processors.images.limits import ImageAspectTooExtreme, ImageTooTall, ImageTooWide
from processors.images.memory_budget import MIB, MemoryBudget, ocr_bytes, operate_bytes
from processors.images.settings import SizeLimits
from processors.images.storage import LocalStore
from processors.pipeline import build
from processors.stages.ocr import OcrProcessor
from processors.stages.operate import OperateProcessor
from processors.stages.render import Renderer
from processors.stages.steps import Steps
from streams.message import Message
from streams.settings import Settings
from tests.integration.burst_memory import HEIGHT, WIDTH, EraseInpainter, FixedTranslator, run_isolated

TASKS, BUDGET_MIB, HEADROOM_MIB = 12, 544, 736  # 12 x 256 MiB reserved would need 3 GiB; 2 at once fit
FIRST_USE_MIB = 128  # what a worker's first render costs once (fonts, library state): 65 MiB measured


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and which holds no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.timeout(240)
def test_a_burst_of_big_images_finishes_within_the_budget_under_a_cap_it_would_exceed_unbounded() -> None:
    report = run_isolated(TASKS, BUDGET_MIB, HEADROOM_MIB)
    assert (report["errors"], report["error"]) == (0, None), report
    assert report["peak_mib"] < BUDGET_MIB + FIRST_USE_MIB, report  # the worker's bound: budget + fixed costs
    assert TASKS * operate_bytes(WIDTH, HEIGHT) > HEADROOM_MIB * MIB  # the cap is below the burst's need


@pytest.mark.timeout(240)
def test_the_same_burst_without_a_budget_fails_under_the_same_cap() -> None:
    report = run_isolated(TASKS, 0, HEADROOM_MIB)
    assert report["errors"] > 0, report
    # Out of memory: an allocation fails (MemoryError, OpenCV's "Insufficient memory"), or one fails
    # inside the event loop's machinery and tasks are never woken (the worker hangs).
    assert any(sign in report["error"] for sign in ("MemoryError", "Insufficient memory", "unfinished after")), report


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (300, 200), "white").save(folder / "page.png")
    return folder, (folder / "page.png").as_uri()


def operate_task(url: str) -> Message:
    corners = [[10.0, 10.0], [200.0, 10.0], [200.0, 60.0], [10.0, 60.0]]
    payload = {"request_id": "r1", "image_id": "i1", "image_url": url, "is_long": False,
               "ocr_result": [[corners, ["限时特价", 0.99]]]}
    return Message(id="1-0", stream="ocr", payload=payload, request_id="r1")


class RecordingInpainter(EraseInpainter):
    def __init__(self, budget: MemoryBudget) -> None:
        self.budget, self.seen = budget, list[int]()

    async def inpaint(self, image: np.ndarray, mask: np.ndarray, is_long: bool) -> np.ndarray:
        self.seen.append(self.budget.used)
        return await super().inpaint(image, mask, is_long)


def operate_with(budget: MemoryBudget, images: ImageFetcher, out: Path, inpainter: Any = None) -> OperateProcessor:
    return OperateProcessor(images, inpainter or EraseInpainter(), FixedTranslator(), Renderer(),
                            LocalStore(out, "http://127.0.0.1:8080"), Steps(CollectorRegistry()), budget=budget)


async def test_an_operate_task_holds_the_bytes_of_its_headers_size_until_it_is_stored(
    page: tuple[Path, str], tmp_path: Path
) -> None:
    folder, url = page
    budget = MemoryBudget(4 * 1024 * MIB)
    inpainter = RecordingInpainter(budget)
    async with ImageFetcher(ImageSettings(file_roots=(str(folder),))) as images:
        [success] = await operate_with(budget, images, tmp_path / "out", inpainter)(operate_task(url))
    assert inpainter.seen == [operate_bytes(300, 200)]
    assert budget.used == 0 and success.payload["image_url"].endswith(".png")


class RecordingEngine:
    """Stands in for OcrEngine: records what the budget holds while it reads."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget, self.seen = budget, list[tuple[int, Any, int]]()

    async def read(self, rgb: np.ndarray, *, held: Any = None) -> list[Any]:
        self.seen.append((self.budget.used, rgb.shape, held.size))
        return []


async def test_an_ocr_task_holds_the_bytes_of_its_headers_size_through_ocr(page: tuple[Path, str]) -> None:
    folder, url = page
    budget = MemoryBudget(4 * 1024 * MIB)
    engine = RecordingEngine(budget)
    payload = {"request_id": "r1", "image_id": "i1", "image_url": url, "is_long": False}
    async with ImageFetcher(ImageSettings(file_roots=(str(folder),))) as images:
        [out] = await OcrProcessor(images, engine, Steps(CollectorRegistry()), budget=budget)(  # type: ignore[arg-type]
            Message(id="1-0", stream="tasks", payload=payload, request_id="r1"))
    assert engine.seen == [(ocr_bytes(300, 200), (200, 300, 3), ocr_bytes(300, 200))]
    assert budget.used == 0 and out.payload["ocr_result"] == []


HOSTILE_HEADERS = [  # (width, height the header claims, error, message after the URL)
    (100_000, 100_000, ImageTooManyPixels, "has 10000000000 pixels, over the limit of 40000000 "
     "(MILLSTREAM_MAX_IMAGE_PIXELS); refused as a possible decompression bomb: send a smaller image or raise the limit"),
    (7000, 7000, ImageTooManyPixels, "has 49000000 pixels (7000 x 7000), over the limit of 40000000 "
     "(MILLSTREAM_MAX_IMAGE_PIXELS); refused as a possible decompression bomb: send a smaller image or raise the limit"),
    (20_000, 10, ImageTooWide, "is 20000 x 10 pixels (width x height), wider than the limit of 10000 "
     "(MILLSTREAM_MAX_IMAGE_WIDTH); send a narrower image or raise it"),
    (10, 40_000, ImageTooTall, "is 10 x 40000 pixels (width x height), taller than the limit of 30000 "
     "(MILLSTREAM_MAX_IMAGE_HEIGHT); split the image or raise the limit"),
    (1, 5000, ImageAspectTooExtreme, "is 1 x 5000 pixels (width x height): its long side is 5000 times its "
     "short side, over the limit of 2000 (MILLSTREAM_MAX_IMAGE_ASPECT); such a strip holds no text to translate"),
]


@pytest.mark.parametrize(("width", "height", "error", "message"), HOSTILE_HEADERS)
async def test_an_image_over_the_limits_is_refused_from_its_header_before_any_memory_is_asked_for(
    tmp_path: Path, width: int, height: int, error: type[Exception], message: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "big.png").write_bytes(png_header(width, height))
    url = (folder / "big.png").as_uri()
    budget = MemoryBudget(1)
    async with ImageFetcher(ImageSettings(file_roots=(str(folder),))) as images, budget.reserve(1):
        # The budget is all taken: a task that asked for memory would wait here forever.
        with pytest.raises(error) as caught:
            await asyncio.wait_for(operate_with(budget, images, tmp_path / "out")(operate_task(url)), timeout=30)
    assert str(caught.value) == f"image {url} {message}"
    assert budget.waiting == 0


async def test_a_header_that_claims_pixels_the_file_does_not_hold_gives_its_reservation_back(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "lie.png").write_bytes(png_header(6324, 6324))  # the largest admitted size, no pixel data
    url = (folder / "lie.png").as_uri()
    budget = MemoryBudget(4 * 1024 * MIB)
    async with ImageFetcher(ImageSettings(file_roots=(str(folder),))) as images:
        with pytest.raises(TruncatedImage) as caught:
            await operate_with(budget, images, tmp_path / "out")(operate_task(url))
    assert str(caught.value) == (f"the PNG image {url} is truncated or corrupt "
                                 "(image file is truncated (0 bytes not processed)); upload the image again")
    assert budget.used == 0


@pytest.mark.parametrize(("data", "error", "message"), [
    (b"", NotAnImage, "x is not a JPEG, PNG, WebP, GIF or BMP image (it is empty); "
     "check that image_url points at the image file itself"),
    (b"hello", NotAnImage, "x is not a JPEG, PNG, WebP, GIF or BMP image (it starts with bytes 68 65 6c 6c 6f); "
     "check that image_url points at the image file itself"),
    (png_header(0, 10), TruncatedImage, "the PNG image x is truncated or corrupt "
     "(its header cannot be read: cannot identify image file); upload the image again"),
    (b"GIF89a", TruncatedImage, "the GIF image x is truncated or corrupt "
     "(its header cannot be read: cannot identify image file); upload the image again"),
])
def test_header_size_refuses_what_decode_refuses_from_the_header(data: bytes, error: type[Exception],
                                                                 message: str) -> None:
    with pytest.raises(error) as caught:
        header_size(data, limits=SizeLimits(), url="x")
    assert str(caught.value) == message


def test_header_size_is_the_size_the_header_claims_without_decoding_it() -> None:
    assert header_size(png_header(300, 200), limits=SizeLimits(), url="x") == (300, 200)


async def test_the_pipeline_runs_as_many_ocr_tasks_as_ocr_threads_and_gives_each_stage_its_budget(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLSTREAM_OCR_THREADS", "3")
    monkeypatch.setenv("MILLSTREAM_OPERATE_MEMORY_BUDGET", str(3 * 1024 * MIB))
    monkeypatch.setenv("MILLSTREAM_OCR_MEMORY_BUDGET", "0")
    pipeline = build(settings)
    try:
        stages = {stage.name: stage for stage in pipeline.stages}
        assert (stages["ocr"].concurrency, stages["ocr"].max_in_flight) == (3, 6)
        assert stages["ocr"].processor.budget.total == 0  # type: ignore[union-attr]
        assert stages["operate"].processor.budget.total == 3 * 1024 * MIB  # type: ignore[union-attr]
    finally:
        for close in pipeline.on_stop:
            await close()


async def test_by_default_the_ocr_stage_runs_one_task_per_worker_within_2_gib(settings: Settings) -> None:
    pipeline = build(settings)
    try:
        ocr = next(stage for stage in pipeline.stages if stage.name == "ocr")
        assert (ocr.concurrency, ocr.max_in_flight, ocr.timeout) == (1, 2, 120)
        assert ocr.processor.budget.total == 2 * 1024 * MIB  # type: ignore[union-attr]
    finally:
        for close in pipeline.on_stop:
            await close()
