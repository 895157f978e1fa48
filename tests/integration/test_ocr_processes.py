"""The ocr stage's OCR runs in killable worker processes: the same boxes as in-process, and
an OCR past its time is stopped for real (its process killed, a fresh one in its slot)."""

from __future__ import annotations

import numpy as np
import pytest

from processors.local.samples import product_image
from processors.stages.ocr import OcrEngine, OcrFailed
from streams.errors import HardTimeout, RetryableError
from tests.support.processes import gone


@pytest.fixture
async def engine():
    engine = OcrEngine(threads=1)
    await engine.start()
    yield engine
    await engine.aclose()


async def test_the_boxes_read_in_a_worker_process_are_those_read_in_this_one(engine):
    image = product_image(is_long=True).image
    boxes = await engine.read(image)
    assert boxes and boxes == engine.read_sync(image)


async def test_an_ocr_past_its_timeout_is_killed_and_the_next_runs_in_a_fresh_process(engine):
    tall = np.full((20000, 790, 3), 255, np.uint8)  # 16 s of OCR on the seed's page (docs/MEMORY.md)
    tall[::400, 100:600] = 0
    [before] = engine._pool.pids
    engine.timeout = 1.0
    with pytest.raises(HardTimeout) as timed_out:
        await engine.read(tall)
    assert isinstance(timed_out.value, RetryableError) and timed_out.value.pid == before
    assert await engine.read(product_image(is_long=False).image)  # cancelling a read kills the same
    await engine._pool.settled()
    assert gone(before) and before not in engine._pool.pids


async def test_what_the_engine_refuses_in_its_process_is_still_a_permanent_ocr_failure(engine):
    with pytest.raises(OcrFailed):
        await engine.read(np.zeros((4, 4), np.uint8))  # not an RGB image: the engine fails on it
