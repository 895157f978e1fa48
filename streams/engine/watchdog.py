"""Watchdog: handler timeouts without a timer per message.

``asyncio.timeout`` arms and cancels a timer for every attempt, a visible cost
when handlers take microseconds. Instead each worker task records the deadline
of the attempt it runs; one periodic check cancels a task still inside an
overdue attempt, and the worker turns that cancellation into a timeout. The
attempt's sequence number guards against cancelling a later attempt, and
``uncancel`` keeps the task's cancellation count right, as asyncio.timeout does.
A worker holds its slot (``worker()``) and arms it around each attempt:
looking up the current task per attempt, and a coroutine frame wrapping each,
were a tenth of a no-op stage's time.

Soft timeout (a stage's ``soft_timeout``, shorter than its ``timeout``): at
the soft deadline the check cancels the task with ``SOFT_CANCEL`` as message;
``Slot.guard``, wrapped around the handler's awaitable, turns that one
cancellation into a ``SoftTimeout`` raised at the handler's pending ``await``,
where the handler may catch it and finish. At ``timeout`` it is cancelled for
good, as without a soft timeout. Only a stage with a soft timeout pays for the
guard; blocking work is stopped for real only in a KillablePool (streams.killable),
whose ``run`` kills its process when the awaiting task is cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Generator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from streams.errors import SoftTimeout

T = TypeVar("T")
SOFT_CANCEL = "millstream: soft timeout"


class Slot:
    """The attempt a worker task is running: its deadlines and sequence number.

    A worker arms its slot around each attempt; when the watchdog cancelled
    the task for that very attempt, ``fired_for`` absorbs the cancellation.
    ``soft_owed`` is the attempt whose soft cancellation was requested and not
    yet turned into a SoftTimeout (then ``fired_for`` absorbs it too).
    """

    __slots__ = ("deadline", "fired", "hard", "seq", "soft", "soft_deadline", "soft_fired", "soft_owed",
                 "task")

    def __init__(self, task: asyncio.Task[object], soft: float | None = None, hard: float = 0.0) -> None:
        self.task, self.deadline, self.seq, self.fired = task, 0.0, 0, -1
        self.soft, self.hard, self.soft_deadline, self.soft_fired, self.soft_owed = soft, hard, 0.0, -1, -1

    def arm(self, timeout: float) -> int:
        self.seq += 1
        now = time.monotonic()
        self.deadline = now + timeout
        if self.soft is not None:
            self.soft_deadline = now + self.soft
        return self.seq

    def disarm(self) -> None:
        self.deadline = self.soft_deadline = 0.0

    def fired_for(self, seq: int) -> bool:
        """Whether a CancelledError of attempt ``seq`` is the watchdog's timeout (then absorbed)."""
        owed = (self.fired == seq) + (self.soft_owed == seq)
        if not owed:
            return False
        self.soft_owed = -1
        left = self.task.cancelling()
        for _ in range(owed):
            left = self.task.uncancel()
        return left == 0

    def guard(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        """``awaitable`` (the handler's), made to raise SoftTimeout at the soft deadline."""
        return awaitable if self.soft is None else _SoftGuard(awaitable, self, self.seq)

    def check(self, now: float) -> None:
        """Cancel the task if its attempt is past a deadline it has not been cancelled for."""
        if not self.deadline or self.fired == self.seq:
            return
        if now > self.deadline:
            self.fired = self.seq
            self.task.cancel()
        elif self.soft_deadline and now > self.soft_deadline and self.soft_fired != self.seq:
            self.soft_fired = self.soft_owed = self.seq
            self.task.cancel(SOFT_CANCEL)

    def soften(self, error: BaseException, seq: int) -> BaseException:
        """The exception to raise in the handler instead of ``error``: a SoftTimeout when ``error``
        is the soft cancellation of attempt ``seq`` and no other cancellation is pending."""
        if (isinstance(error, asyncio.CancelledError) and self.soft_owed == seq
                and self.fired != seq and self.task.cancelling() == 1):
            self.soft_owed = -1
            self.task.uncancel()
            return SoftTimeout(self.soft or 0.0, self.hard)
        return error


class _SoftGuard(Awaitable[T]):
    """Drives the handler's awaitable, changing the soft cancellation thrown into it (an
    iterator with ``throw``: ``await`` delegates the task's throw to it)."""

    __slots__ = ("_inner", "_seq", "_slot")

    def __init__(self, awaitable: Awaitable[T], slot: Slot, seq: int) -> None:
        self._inner: Generator[Any, Any, T] = awaitable.__await__()
        self._slot, self._seq = slot, seq

    def __await__(self) -> Generator[Any, Any, T]:
        return self

    def __iter__(self) -> _SoftGuard[T]:
        return self

    def __next__(self) -> Any:
        return self._inner.send(None)

    def send(self, value: Any) -> Any:
        return self._inner.send(value)

    def throw(self, error: BaseException | type[BaseException], *rest: Any) -> Any:
        if isinstance(error, type):
            error = rest[0] if rest and isinstance(rest[0], BaseException) else error()
        return self._inner.throw(self._slot.soften(error, self._seq))

    def close(self) -> None:
        self._inner.close()


class Watchdog:
    def __init__(self, timeout: float, soft_timeout: float | None = None) -> None:
        self.timeout, self.soft_timeout = timeout, soft_timeout
        self.interval = min(0.05, (soft_timeout or timeout) / 10)
        self._slots: dict[asyncio.Task[object], Slot] = {}

    async def run(self) -> None:
        """Check running attempts every ``interval`` seconds; run it as a task."""
        while True:
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            for slot in self._slots.values():
                slot.check(now)

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[Slot]:
        """Register the current task for the block (a worker loop); yields its slot."""
        task = asyncio.current_task()
        assert task is not None
        slot = self._slots[task] = Slot(task, self.soft_timeout, self.timeout)
        try:
            yield slot
        finally:
            del self._slots[task]
