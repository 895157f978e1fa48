"""The watchdog's soft timeout: at ``soft_timeout`` the handler gets a SoftTimeout at its
pending await (it may catch it and finish); at ``timeout`` it is cancelled for good. The
checks are driven by hand (``Slot.check(now)``), so no test waits for a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from streams.engine.watchdog import SOFT_CANCEL, Slot, Watchdog
from streams.errors import ProcessingTimeout, RetryableError, SoftTimeout
from streams.stage import Stage

SOFT, HARD = 10.0, 20.0


async def attempt(slot: Slot, handler: Callable[[], Awaitable[Any]]) -> Any:
    """What Handling._attempt does with a soft timeout: arm, guard the handler, absorb the
    watchdog's cancellation (docs/controls/timeouts.md lists the two lines it needs)."""
    seq = slot.arm(HARD)
    try:
        return await slot.guard(handler())
    except asyncio.CancelledError:
        if slot.fired_for(seq):
            return ProcessingTimeout(HARD)
        raise
    except Exception as error:  # noqa: BLE001 - as Handling: the failure becomes a result
        return error
    finally:
        slot.disarm()


class Parked:
    """A handler parked at an await until the test lets it go; records what it saw."""

    def __init__(self, on_soft: str = "raise") -> None:
        self.waiting, self.seen, self.on_soft = asyncio.Event(), [], on_soft

    async def __call__(self) -> Any:
        try:
            await self._park()
        except SoftTimeout as soft:
            self.seen.append(soft)
            if self.on_soft == "finish":
                return "partial result"
            if self.on_soft == "keep waiting":
                await self._park()
            raise
        return "done"

    async def _park(self) -> None:
        self.waiting.set()
        await asyncio.get_running_loop().create_future()


async def started(handler: Parked) -> tuple[asyncio.Task[Any], Slot]:
    holder: dict[str, Slot] = {}

    async def worker() -> Any:
        task = asyncio.current_task()
        assert task is not None
        holder["slot"] = Slot(task, SOFT, HARD)  # type: ignore[arg-type]
        return await attempt(holder["slot"], handler)

    task = asyncio.create_task(worker())
    await handler.waiting.wait()
    handler.waiting.clear()
    return task, holder["slot"]


def past_soft(slot: Slot) -> float:
    return slot.soft_deadline + 0.001


def past_hard(slot: Slot) -> float:
    return slot.deadline + 0.001


async def test_a_handler_that_catches_the_soft_timeout_finishes_with_its_own_result():
    handler = Parked(on_soft="finish")
    task, slot = await started(handler)
    slot.check(past_soft(slot))
    assert await task == "partial result"
    assert [type(s) for s in handler.seen] == [SoftTimeout] and handler.seen[0].seconds == SOFT
    assert task.cancelling() == 0


async def test_an_uncaught_soft_timeout_fails_the_attempt_retryably():
    task, slot = await started(Parked(on_soft="raise"))
    slot.check(past_soft(slot))
    result = await task
    assert isinstance(result, SoftTimeout) and isinstance(result, RetryableError)
    assert "soft timeout of 10 s (hard timeout 20 s)" in str(result)


async def test_a_handler_still_running_at_the_hard_timeout_is_cancelled_for_good():
    handler = Parked(on_soft="keep waiting")
    task, slot = await started(handler)
    slot.check(past_soft(slot))
    await handler.waiting.wait()  # it caught the soft timeout and waits on
    slot.check(past_soft(slot))  # a later check does not fire the soft timeout twice
    slot.check(past_hard(slot))
    result = await task
    assert type(result) is ProcessingTimeout and len(handler.seen) == 1
    assert task.cancelling() == 0


async def test_soft_and_hard_fired_before_the_handler_ran_end_as_the_hard_timeout():
    handler = Parked()
    task, slot = await started(handler)
    slot.check(past_soft(slot))
    slot.deadline = past_soft(slot)  # both due before the task runs again
    slot.check(past_hard(slot))
    assert type(await task) is ProcessingTimeout and handler.seen == []
    assert task.cancelling() == 0


async def test_a_shutdown_cancel_pending_with_the_soft_one_is_not_swallowed():
    handler = Parked(on_soft="finish")
    task, slot = await started(handler)
    slot.check(past_soft(slot))
    task.cancel()  # the runner's shutdown, at the same moment
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handler.seen == []


async def test_the_soft_cancellation_carries_its_message():
    seen: list[BaseException] = []

    async def catches_everything() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except BaseException as error:
            seen.append(error)
            raise

    task = asyncio.create_task(catches_everything())
    await asyncio.sleep(0)
    slot = Slot(task, SOFT, HARD)  # type: ignore[arg-type]
    slot.arm(HARD)
    slot.check(past_soft(slot))
    with pytest.raises(asyncio.CancelledError, match=SOFT_CANCEL):
        await task
    assert [e.args for e in seen] == [(SOFT_CANCEL,)]  # unguarded, it is a plain cancellation


async def test_a_late_check_cannot_fire_into_the_next_attempt():
    handler = Parked(on_soft="finish")
    task, slot = await started(handler)
    stale = past_soft(slot)
    slot.disarm()
    slot.arm(HARD)  # the next attempt, armed later: its soft deadline is after ``stale``
    slot.soft_deadline = stale + 1
    slot.check(stale)
    assert not task.done() and handler.seen == []
    task.cancel()


async def test_without_a_soft_timeout_the_handler_is_not_wrapped():
    task = asyncio.current_task()
    assert task is not None
    slot = Slot(task)  # type: ignore[arg-type]
    slot.arm(HARD)
    assert slot.soft_deadline == 0.0
    coroutine = asyncio.sleep(0)
    assert slot.guard(coroutine) is coroutine
    await coroutine


def test_the_watchdog_checks_often_enough_for_the_soft_timeout():
    assert Watchdog(60.0, 0.2).interval == pytest.approx(0.02)
    assert Watchdog(60.0).interval == 0.05


@pytest.mark.parametrize("soft", [0.0, -1.0, 5.0, 6.0])
def test_a_soft_timeout_must_be_positive_and_shorter_than_the_timeout(soft: float):
    with pytest.raises(ValueError, match="soft_timeout must be > 0 and < timeout"):
        Stage("s", "in", lambda m: m, timeout=5.0, soft_timeout=soft)  # type: ignore[arg-type,return-value]
    assert Stage("s", "in", lambda m: m, timeout=5.0, soft_timeout=4.9).soft_timeout == 4.9  # type: ignore[arg-type,return-value]
