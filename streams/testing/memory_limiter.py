"""A stage's rate in memory: the GCRA of streams.redis.ratelimit on the broker's clock.

The state is the broker's (``MemoryBroker.rates``: key -> the next slot's
theoretical arrival time, unix microseconds), so every MemoryTransport on one
broker, like every process on one Redis, shares one limit. With a
``ManualClock`` a waiting attempt sleeps until the test advances the clock
(``ManualClock.sleep``): unit tests of throttling run without real waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from streams.rates import StageRate


@dataclass(frozen=True, slots=True)
class Slot:
    """As streams.redis.ratelimit.Reservation: granted ``wait`` s from now, or refused, ``wait`` away."""

    granted: bool
    wait: float


def gcra(tat: int, now: int, interval: int, burst: int, max_wait: int) -> tuple[bool, int, int]:
    """The GCRA script's arithmetic (microseconds): (granted, wait, the next tat)."""
    tat = max(tat, now)
    wait = max(0, tat - interval * (burst - 1) - now)
    if wait > max_wait:
        return False, wait, tat
    return True, wait, tat + interval


class MemoryRate:
    """One shared limit: ``rates[key]`` in ``rates`` (the broker's), read against ``clock``."""

    def __init__(self, rates: dict[str, int], key: str, rate: StageRate,
                 clock: Callable[[], float], max_wait: float) -> None:
        self._rates, self.key, self.rate, self._clock = rates, key, rate, clock
        self.max_wait = max_wait
        self._interval = max(1, round(rate.interval * 1_000_000))

    async def reserve(self, max_wait: float | None = None) -> Slot:
        await asyncio.sleep(0)  # a round trip, as the other calls of the memory transport
        patience = round((self.max_wait if max_wait is None else max_wait) * 1_000_000)
        now = round(self._clock() * 1_000_000)
        granted, wait, tat = gcra(self._rates.get(self.key, 0), now, self._interval, self.rate.burst,
                                  patience)
        self._rates[self.key] = tat
        return Slot(granted, wait / 1_000_000)
