"""A clock that moves only when told, for the in-memory transport.

The memory transport reads the time from a clock callable (unix seconds, like
``time.time``): idle times of pending entries, due retries, heartbeat expiry,
entry ids. Give it a ``ManualClock`` and a test moves time forward instead of
sleeping.
"""

from __future__ import annotations

import time


class ManualClock:
    """Unix time in seconds, starting at ``start`` (default: now), moved only by ``advance``."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self._now += seconds

    def advance_to(self, when: float) -> None:
        """Move time forward to unix time ``when``; an earlier ``when`` changes nothing."""
        self._now = max(self._now, when)
