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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Slot:
    """The attempt a worker task is running: its deadline and sequence number.

    A worker arms its slot around each attempt; when the watchdog cancelled
    the task for that very attempt, ``fired_for`` absorbs the cancellation.
    """

    __slots__ = ("deadline", "fired", "seq", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task, self.deadline, self.seq, self.fired = task, 0.0, 0, -1

    def arm(self, timeout: float) -> int:
        self.seq += 1
        self.deadline = time.monotonic() + timeout
        return self.seq

    def disarm(self) -> None:
        self.deadline = 0.0

    def fired_for(self, seq: int) -> bool:
        """Whether a CancelledError of attempt ``seq`` is the watchdog's timeout (then absorbed)."""
        return self.fired == seq and self.task.uncancel() == 0


class Watchdog:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.interval = min(0.05, timeout / 10)
        self._slots: dict[asyncio.Task[object], Slot] = {}

    async def run(self) -> None:
        """Check running attempts every ``interval`` seconds; run it as a task."""
        while True:
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            for slot in self._slots.values():
                if slot.deadline and now > slot.deadline and slot.fired != slot.seq:
                    slot.fired = slot.seq
                    slot.task.cancel()

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[Slot]:
        """Register the current task for the block (a worker loop); yields its slot."""
        task = asyncio.current_task()
        assert task is not None
        slot = self._slots[task] = Slot(task)
        try:
            yield slot
        finally:
            del self._slots[task]
