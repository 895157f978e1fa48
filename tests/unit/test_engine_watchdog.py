"""The watchdog cancels a worker only inside the very attempt that ran past its deadline.

Timeouts here are tens of milliseconds: the watchdog checks every tenth of one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from streams.engine.watchdog import Slot, Watchdog

TIMEOUT = 0.02
T = TypeVar("T")


async def finished(work: Coroutine[Any, Any, T]) -> T:
    """The result of ``work`` run as a task of its own (the watchdog cancels tasks), within a second."""
    return await asyncio.wait_for(asyncio.create_task(work), 1)


async def forever() -> None:
    await asyncio.Event().wait()


async def test_an_attempt_past_its_deadline_is_cancelled_and_the_cancellation_absorbed() -> None:
    watchdog = Watchdog(TIMEOUT)
    checks = asyncio.create_task(watchdog.run())

    async def worker() -> tuple[bool, int]:
        async with watchdog.worker() as slot:
            seq = slot.arm(watchdog.timeout)
            try:
                await forever()
            except asyncio.CancelledError:
                absorbed = slot.fired_for(seq)
                task = asyncio.current_task()
                assert task is not None
                return absorbed, task.cancelling()
            finally:
                slot.disarm()
            raise AssertionError("the attempt ended without being cancelled")

    try:
        assert await finished(worker()) == (True, 0), "absorbed, as asyncio.timeout does"
    finally:
        checks.cancel()


async def test_an_overdue_attempt_is_cancelled_once_not_at_every_check() -> None:
    watchdog = Watchdog(TIMEOUT)
    checks = asyncio.create_task(watchdog.run())
    cancellations = 0

    async def worker() -> None:
        nonlocal cancellations
        async with watchdog.worker() as slot:
            seq = slot.arm(watchdog.timeout)
            deadline = asyncio.get_running_loop().time() + 4 * TIMEOUT
            while asyncio.get_running_loop().time() < deadline:  # a handler that ignores cancellation
                try:
                    await asyncio.sleep(watchdog.interval)
                except asyncio.CancelledError:
                    assert slot.fired_for(seq)
                    cancellations += 1
            slot.disarm()

    try:
        await finished(worker())
    finally:
        checks.cancel()
    assert cancellations == 1


async def test_a_later_attempt_is_not_cancelled_by_an_earlier_attempts_deadline() -> None:
    watchdog = Watchdog(TIMEOUT)
    checks = asyncio.create_task(watchdog.run())

    async def worker() -> str:
        async with watchdog.worker() as slot:
            slot.arm(TIMEOUT)
            slot.disarm()  # attempt 1 finished in time
            slot.arm(10.0)
            await asyncio.sleep(3 * TIMEOUT)  # attempt 2 works past attempt 1's deadline
            slot.disarm()
            return f"fired for {slot.fired}"

    try:
        assert await finished(worker()) == "fired for -1"
    finally:
        checks.cancel()


async def test_a_worker_between_attempts_is_never_cancelled() -> None:
    watchdog = Watchdog(TIMEOUT)
    checks = asyncio.create_task(watchdog.run())

    async def worker() -> None:
        async with watchdog.worker() as slot:
            slot.arm(TIMEOUT)
            slot.disarm()
            await asyncio.sleep(3 * TIMEOUT)  # waiting for work, no attempt armed

    try:
        await finished(worker())
    finally:
        checks.cancel()


async def test_a_cancellation_of_the_attempt_from_elsewhere_is_not_absorbed() -> None:
    async def worker() -> bool:
        slot = Slot(asyncio.current_task())  # type: ignore[arg-type]
        seq = slot.arm(10.0)
        try:
            await forever()
        except asyncio.CancelledError:
            return slot.fired_for(seq)
        raise AssertionError("not cancelled")

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    task.cancel()
    assert await task is False


async def test_a_cancellation_from_elsewhere_on_top_of_the_watchdogs_is_kept() -> None:
    watchdog = Watchdog(TIMEOUT)
    checks = asyncio.create_task(watchdog.run())

    async def worker() -> tuple[bool, int]:
        task = asyncio.current_task()
        assert task is not None
        async with watchdog.worker() as slot:
            seq = slot.arm(TIMEOUT)
            work = asyncio.get_running_loop().create_future()
            # A shutdown cancelling the worker at the moment the watchdog does (its
            # cancellation of the awaited future runs this callback before the worker resumes).
            work.add_done_callback(lambda _: task.cancel())
            try:
                await work
            except asyncio.CancelledError:
                return slot.fired_for(seq), task.cancelling()
            raise AssertionError("not cancelled")

    try:
        assert await finished(worker()) == (False, 1), "the shutdown's cancellation stays requested"
    finally:
        checks.cancel()


async def test_a_slot_counts_its_attempts() -> None:
    slot = Slot(asyncio.current_task())  # type: ignore[arg-type]
    assert [slot.arm(1.0), slot.arm(1.0), slot.arm(1.0)] == [1, 2, 3]
    slot.disarm()
    assert slot.deadline == 0.0


def test_the_check_interval_is_a_tenth_of_the_timeout_and_at_most_fifty_milliseconds() -> None:
    assert Watchdog(0.02).interval == 0.002
    assert Watchdog(60.0).interval == 0.05
