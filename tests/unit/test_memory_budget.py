"""MemoryBudget: FIFO by bytes, clamped, released on every exit, never negative; its settings."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.images.memory_budget import MIB, MemoryBudget, ocr_bytes, operate_bytes
from processors.images.settings import ImageSettings, SizeLimits
from streams.errors import ConfigError
from streams.settings import load


async def settle() -> None:
    """Let every task that can run, run (a barrier on the loop's ready queue, not a timed wait)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_reservation_that_fits_is_held_at_once_and_released_after_the_block() -> None:
    budget = MemoryBudget(10)
    async with budget.reserve(4) as held:
        assert (held.size, budget.used, budget.waiting) == (4, 4, 0)
    assert budget.used == 0


async def test_a_big_request_is_served_before_smaller_ones_that_came_after_it() -> None:
    budget, order = MemoryBudget(10), []
    first = budget.reserve(6)
    await first.__aenter__()

    async def take(name: str, size: int) -> None:
        async with budget.reserve(size):
            order.append(name)
            await settle()

    big = asyncio.create_task(take("big", 10))
    await settle()
    small = asyncio.create_task(take("small", 2))  # 6 + 2 fits, but the big one is first in line
    await settle()
    assert (order, budget.used, budget.waiting) == ([], 6, 2)

    await first.__aexit__(None, None, None)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and budget.used == 0


async def test_a_request_over_the_whole_budget_is_clamped_and_runs_alone() -> None:
    budget = MemoryBudget(10)
    async with budget.reserve(10**12) as held:
        assert (held.size, budget.used) == (10, 10)
        other = asyncio.create_task(_hold(budget, 1))
        await settle()
        assert budget.waiting == 1 and not other.done()
    await other
    assert budget.used == 0


@pytest.mark.parametrize(("size", "held"), [(-5, 0), (0, 0), (3, 3), (10, 10), (11, 10)])
async def test_a_request_is_clamped_between_zero_and_the_budget(size: int, held: int) -> None:
    budget = MemoryBudget(10)
    async with budget.reserve(size) as reservation:
        assert reservation.size == held == budget.used


async def test_a_budget_of_zero_is_unbounded_and_never_waits() -> None:
    budget = MemoryBudget(0)
    async with budget.reserve(10**15), budget.reserve(10**15) as held:
        assert (held.size, budget.used, budget.waiting) == (10**15, 0, 0)


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="a memory budget is a number of bytes >= 0, not -1"):
        MemoryBudget(-1)


async def test_the_bytes_are_released_when_the_block_raises() -> None:
    budget = MemoryBudget(10)
    with pytest.raises(RuntimeError, match="boom"):
        async with budget.reserve(7):
            raise RuntimeError("boom")
    assert budget.used == 0
    async with budget.reserve(10):
        assert budget.used == 10


async def test_the_bytes_are_released_when_the_holder_is_cancelled() -> None:
    budget, inside = MemoryBudget(10), asyncio.Event()

    async def holder() -> None:
        async with budget.reserve(8):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(holder())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.used == 0


async def test_a_waiter_cancelled_in_line_takes_nothing_and_lets_those_behind_it_in() -> None:
    budget = MemoryBudget(10)
    async with budget.reserve(6):
        big = asyncio.create_task(_hold(budget, 10))
        await settle()
        small = asyncio.create_task(_hold(budget, 4))
        await settle()
        assert budget.waiting == 2 and not small.done()
        big.cancel()  # the head of the line leaves: the small one fits beside the 6 held
        await asyncio.wait_for(small, timeout=5)
        assert budget.used == 6 and budget.waiting == 0
    assert budget.used == 0


async def test_a_waiter_cancelled_just_after_it_was_served_gives_its_bytes_back() -> None:
    budget = MemoryBudget(10)
    first = budget.reserve(10)
    await first.__aenter__()
    waiter = asyncio.create_task(_hold(budget, 5))
    await settle()
    await first.__aexit__(None, None, None)  # serves the waiter: its bytes are counted now
    assert budget.used == 5
    waiter.cancel()  # before it ran
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.used == 0


async def test_thread_work_keeps_its_bytes_held_until_the_thread_ends_though_the_block_was_cancelled() -> None:
    budget, started, finish = MemoryBudget(10), threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        finish.wait(timeout=30)
        return "done"

    async def task() -> None:
        async with budget.reserve(9) as held:
            await held.in_thread(work)

    running = asyncio.create_task(task())
    await asyncio.to_thread(started.wait, 30)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert budget.used == 9  # the thread still holds its arrays
    finish.set()
    async with budget.reserve(10):  # served once the thread has ended
        assert budget.used == 10


async def test_thread_work_that_fails_after_its_block_was_left_still_releases_the_bytes() -> None:
    budget, started, finish = MemoryBudget(10), threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        finish.wait(timeout=30)
        raise RuntimeError("late failure")

    async def task() -> None:
        async with budget.reserve(9) as held:
            await held.in_thread(work)

    running = asyncio.create_task(task())
    await asyncio.to_thread(started.wait, 30)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    finish.set()
    async with budget.reserve(10):
        assert budget.used == 10


async def _hold(budget: MemoryBudget, size: int) -> None:
    async with budget.reserve(size):
        await settle()


@settings(max_examples=60, deadline=None)
@given(total=st.integers(1, 64), requests=st.lists(st.tuples(st.integers(-8, 96), st.booleans()), max_size=24),
       seed=st.integers(0, 2**32 - 1))
def test_what_is_held_stays_between_zero_and_the_budget_whatever_is_asked_and_cancelled(
    total: int, requests: list[tuple[int, bool]], seed: int
) -> None:
    async def scenario() -> None:
        budget, rng, seen = MemoryBudget(total), random.Random(seed), []

        async def one(size: int) -> None:
            async with budget.reserve(size) as held:
                seen.append(budget.used)
                assert 0 <= held.size <= total
                for _ in range(rng.randint(0, 3)):
                    await asyncio.sleep(0)

        tasks = [asyncio.create_task(one(size)) for size, _ in requests]
        for (_, cancel), task in zip(requests, tasks, strict=True):
            await asyncio.sleep(0)
            seen.append(budget.used)
            if cancel:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert all(0 <= used <= total for used in seen), seen
        assert (budget.used, budget.waiting) == (0, 0)

    asyncio.run(scenario())


def test_the_reserved_bytes_cover_every_measured_peak_of_docs_memory_md() -> None:
    measured = {  # (width, height): (ocr MiB, operate MiB), docs/MEMORY.md "Measured peaks"
        (1, 1): (190, 2), (1, 1280): (662, 7), (1280, 1): (403, 6), (15, 30_000): (468, 97),
        (10_000, 5): (346, 43), (790, 20_000): (383, 335), (1333, 30_000): (592, 799),
        (10_000, 4000): (490, 794), (6324, 6324): (919, 796),
    }
    through_the_processor = {  # (width, height): operate MiB, tests/integration/burst_memory.py, one task
        (15, 30_000): 74, (790, 20_000): 461, (1333, 30_000): 968, (6324, 6324): 971, (10_000, 4000): 915,
        (2000, 4000): 214, (4000, 4000): 461,  # in a fresh process: the worker's first-use costs included
        (1000, 1000): 53, (2000, 2000): 97,  # a second task in the same process: without them
    }
    for (width, height), (ocr_mib, operate_mib) in measured.items():
        assert ocr_bytes(width, height) >= ocr_mib * MIB, (width, height)
        assert operate_bytes(width, height) >= operate_mib * MIB, (width, height)
    for (width, height), operate_mib in through_the_processor.items():
        assert operate_bytes(width, height) >= operate_mib * MIB, (width, height)


def test_the_budget_settings_default_to_4_and_2_gib_and_one_ocr_thread() -> None:
    settings = ImageSettings()
    assert (settings.operate_memory_budget, settings.ocr_memory_budget) == (4 * 1024**3, 2 * 1024**3)
    assert settings.ocr_threads == 1
    loaded = load(ImageSettings, {"MILLSTREAM_OPERATE_MEMORY_BUDGET": "0", "MILLSTREAM_OCR_THREADS": "3"})
    assert (loaded.operate_memory_budget, loaded.ocr_threads) == (0, 3)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("MILLSTREAM_OPERATE_MEMORY_BUDGET", "-1", "must be a number of bytes >= 0 (0: unbounded)"),
        ("MILLSTREAM_OCR_MEMORY_BUDGET", "-1", "must be a number of bytes >= 0 (0: unbounded)"),
        ("MILLSTREAM_OPERATE_MEMORY_BUDGET", "4GiB", "invalid value '4GiB'"),
        ("MILLSTREAM_OCR_MEMORY_BUDGET", "1.5e9", "invalid value '1.5e9'"),
        ("MILLSTREAM_OCR_THREADS", "0", "must be between 1 and 64"),
        ("MILLSTREAM_OCR_THREADS", "65", "must be between 1 and 64"),
    ],
)
def test_an_invalid_budget_setting_stops_start_up_naming_the_variable(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(ImageSettings, {variable: value})
    assert caught.value.variable == variable
    assert problem in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 48), height=st.integers(1, 48),
       image_format=st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP"]), orientation=st.integers(1, 8))
def test_what_a_task_reserves_from_the_header_is_what_the_decoded_image_costs(
    width: int, height: int, image_format: str, orientation: int
) -> None:
    import io

    from PIL import Image

    from processors.images.decode import decode, header_size

    image, buffer = Image.new("RGB", (width, height), "white"), io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(buffer, format=image_format, **({"exif": exif} if image_format in ("JPEG", "PNG", "WEBP") else {}))
    data = buffer.getvalue()
    claimed = header_size(data, limits=SizeLimits(), url="x")
    decoded = decode(data, limits=SizeLimits(), url="x").size
    assert sorted(claimed) == sorted(decoded)  # a PNG's orientation may come after its pixels: then swapped
    assert operate_bytes(*claimed) == operate_bytes(*decoded) and ocr_bytes(*claimed) == ocr_bytes(*decoded)
