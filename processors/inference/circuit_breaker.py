"""A circuit breaker: stop calling a server that keeps failing, probe it now and then.

```
closed --(failure_threshold consecutive failures)--> open
open --(reset_after seconds)--> half-open: one probe call is let through
half-open --probe succeeds--> closed      half-open --probe fails--> open
```
Only transient failures count (the caller decides which): a server that answers
"bad input" is up. Pure state and an injected clock, so tests need no sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    reset_after: float = 5.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.reset_after < 0:
            raise ValueError(f"invalid breaker policy: {self}")


class CircuitBreaker:
    """Decides whether a call may go out; told how each call that went out ended."""

    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy, self._clock = policy, clock
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        return self._state

    def allow(self) -> bool:
        """True if a call may go out now (in half-open: only the single probe)."""
        if self._state == "closed":
            return True
        if self._state == "open" and self._clock() - self._opened_at >= self._policy.reset_after:
            self._state = "half_open"
        if self._state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self._state, self._failures, self._probing = "closed", 0, False

    def failure(self) -> None:
        self._failures += 1
        if self._state == "half_open" or self._failures >= self._policy.failure_threshold:
            self._state, self._opened_at, self._probing = "open", self._clock(), False

    def abandon(self) -> None:
        """A call that went out ended without a verdict (cancelled): free the probe slot."""
        if self._probing:
            self._probing = False
