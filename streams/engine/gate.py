"""PriorityGate: the handler slots of a stage read by priority, shared by its lanes' runners.

Each lane (streams.priority) has its own runner and workers; all of them ask
the gate before starting a handler, and the gate admits ``slots`` at a time
(the stage's concurrency). A freed slot goes to the highest level waiting,
so a critical entry waits at most for one handler to finish, however deep the
normal backlog. With ``share`` > 0, that share of the starts made while a
lower level waits goes to the highest lower level instead (a credit counter:
each start given to the top level adds ``share``; a whole credit buys a
lower level one start), so lower levels still move under a flood.

A freed slot is handed on in the loop's next turn, not at once: a worker that
releases and goes straight on to its next entry asks again first, so a level
with entries queued keeps its turn against a lower level that was waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque

from streams.priority import LEVELS, Priority


class PriorityGate:
    def __init__(self, slots: int, share: float = 0.0) -> None:
        self._free, self._share, self._credit = slots, share, 0.0
        self._waking = False
        self._waiting: dict[Priority, deque[asyncio.Future[None]]] = {level: deque() for level in LEVELS}
        self.started: dict[Priority, int] = dict.fromkeys(LEVELS, 0)  # starts per level, for tests and logs

    async def acquire(self, level: Priority) -> None:
        """Wait for a slot; a caller cancelled while waiting takes none (one granted meanwhile passes on)."""
        if self._free and not any(self._waiting.values()):
            self._free -= 1
            self.started[level] += 1
            return
        granted = asyncio.get_running_loop().create_future()
        self._waiting[level].append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.cancelled():
                if granted in self._waiting[level]:  # else release() already dropped it
                    self._waiting[level].remove(granted)
            else:
                self.release()  # granted as it was cancelled: hand the slot on
            raise

    def release(self) -> None:
        self._free += 1
        if not self._waking and any(self._waiting.values()):
            self._waking = True
            asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        self._waking = False
        while self._free and (level := self._next()) is not None:
            granted = self._waiting[level].popleft()
            if granted.done():  # cancelled, its waiter not yet resumed
                continue
            self._free -= 1
            self.started[level] += 1
            granted.set_result(None)

    def _next(self) -> Priority | None:
        waiting = [level for level in LEVELS if self._waiting[level]]
        if not waiting:
            return None
        if self._share and len(waiting) > 1:
            if self._credit >= 1:
                self._credit -= 1
                return waiting[1]
            self._credit += self._share
        return waiting[0]
