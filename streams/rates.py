"""Stage rates: the text ``Stage(rate=...)`` takes, and how an attempt waits for its slot.

A rate is ``COUNT/PERIOD`` with an optional burst: ``"100/m"``, ``"10/10s"``,
``"5/s"``, ``"3000/h"``, ``"100/m burst 10"``. PERIOD is a unit (``s``, ``m``,
``h``, ``d``) with an optional positive number before it (``10s``, ``2.5m``).
Without a burst, slots are evenly spaced (``PERIOD / COUNT`` apart); with
``burst B`` up to B attempts may start at once after an idle spell, and the
average stays COUNT per PERIOD.

A transport gives a stage's runner one ``Limiter`` shared by every consumer of
the stage (``Transport.limiter``): GCRA in Redis for the Redis transport, the
same arithmetic on the broker's clock for the memory one. Both wait the same
way (``Admission``): a slot at most ``horizon`` seconds ahead is reserved and
slept for; a farther one is not reserved (a reservation that its worker then
abandons, stopping or dying, is capacity lost), the attempt sleeps until the
slot comes within the horizon and asks again. No attempt is refused: waiting
for a slot costs no attempt and no part of the handler's timeout
(docs/controls/rate-limits.md, decision 0032).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(
    r"\s*(?P<count>\d+)\s*/\s*(?P<every>\d+(?:\.\d+)?)?\s*(?P<unit>[smhd])"
    r"(?:\s+burst\s+(?P<burst>\d+))?\s*"
)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StageRate:
    """``count`` attempts every ``period`` seconds, at most ``burst`` at once."""

    count: int
    period: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not self.period > 0 or self.burst < 1:
            raise ValueError(f"a rate needs count >= 1, period > 0 and burst >= 1, got {self!r}")

    @property
    def per_second(self) -> float:
        return self.count / self.period

    @property
    def interval(self) -> float:
        """Seconds between two slots."""
        return self.period / self.count


def parse_rate(text: str) -> StageRate:
    """The rate ``text`` writes (see the module doc); ValueError naming the text if it is not one."""
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"rate {text!r} is not COUNT/PERIOD [burst N], e.g. '100/m', '10/10s', "
                         "'100/m burst 10' (units s, m, h, d)")
    every = float(match["every"] or 1)
    try:
        return StageRate(int(match["count"]), every * UNITS[match["unit"]], int(match["burst"] or 1))
    except ValueError:
        raise ValueError(f"rate {text!r}: count, period and burst must be > 0") from None


class Reservation(Protocol):
    """A slot reserved (``granted``) ``wait`` seconds from now, or the nearest one, ``wait`` away."""

    @property
    def granted(self) -> bool: ...

    @property
    def wait(self) -> float: ...


class Reserving(Protocol):
    """One shared limit: streams.redis.ratelimit.RateLimiter, or the memory transport's."""

    async def reserve(self, max_wait: float | None = None) -> Reservation:
        """Reserve the next slot if it is at most ``max_wait`` seconds away (raises TransportError
        when the limit's store is unreachable)."""
        ...


class Limiter(Protocol):
    """What the engine asks a stage's shared rate for (Transport.limiter)."""

    async def acquire(self) -> float:
        """Return once one attempt may start; the seconds waited. TransportError: an outage."""
        ...


class Admission:
    """A ``Limiter`` over a shared limit: reserve within ``horizon`` and sleep; else sleep, ask again."""

    def __init__(self, limit: Reserving, sleep: Sleep, horizon: float) -> None:
        if not horizon > 0:
            raise ValueError("a rate's horizon must be > 0 seconds")
        self.limit, self._sleep, self.horizon = limit, sleep, horizon

    async def acquire(self) -> float:
        waited = 0.0
        while True:
            slot = await self.limit.reserve(self.horizon)
            # Not granted: the slot is past the horizon; asking again once it is within reach.
            pause = slot.wait if slot.granted else max(slot.wait - self.horizon, 0.001)
            if pause > 0:
                await self._sleep(pause)
            waited += pause
            if slot.granted:
                return waited
