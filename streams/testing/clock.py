"""A clock that moves only when told, for the in-memory transport.

The memory transport reads the time from a clock callable (unix seconds, like
``time.time``): idle times of pending entries, due retries, heartbeat expiry,
entry ids, rate-limit slots. Give it a ``ManualClock`` and a test moves time
forward instead of sleeping; what waits on that time (a stage's rate,
streams.testing.memory_limiter) waits in ``sleep``, until ``advance`` gets there.
"""

from __future__ import annotations

import asyncio
import time

# A sleep this close to its end is over: sums of float seconds differ in their last bits, and a rate
# limit reckons in whole microseconds of a float clock (memory_limiter), so its waits may be a
# microsecond or two longer than the interval the test advances by.
EPSILON = 1e-5


class ManualClock:
    """Unix time in seconds, starting at ``start`` (default: now), moved only by ``advance``."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self._now += seconds
        self._wake()

    def advance_to(self, when: float) -> None:
        """Move time forward to unix time ``when``; an earlier ``when`` changes nothing."""
        self._now = max(self._now, when)
        self._wake()

    async def sleep(self, seconds: float) -> None:
        """Return once the clock was advanced ``seconds`` past now (after one yield if <= 0)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, woken))
        await woken

    @property
    def sleeping(self) -> int:
        """How many ``sleep`` calls wait for the clock: a barrier for tests."""
        return sum(1 for _, woken in self._sleepers if not woken.done())

    @property
    def next_wake(self) -> float | None:
        """When the earliest ``sleep`` still waiting ends (unix seconds), or None."""
        return min((due for due, woken in self._sleepers if not woken.done()), default=None)

    def _wake(self) -> None:
        waiting = []
        for due, woken in self._sleepers:
            if woken.done():
                continue
            if due <= self._now + EPSILON:
                woken.set_result(None)
            else:
                waiting.append((due, woken))
        self._sleepers = waiting
