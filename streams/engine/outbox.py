"""Outbox: finished transitions waiting for the committer, taken in batches.

A plain list and an Event: cheaper per item than asyncio.Queue, and the
committer takes everything that is ready in one go (group commit).
"""

from __future__ import annotations

import asyncio

from streams.transition import Transition


class Outbox:
    def __init__(self) -> None:
        self._items: list[Transition] = []
        self._ready = asyncio.Event()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def put(self, transition: Transition) -> None:
        self._items.append(transition)
        self._unfinished += 1
        self._idle.clear()
        self._ready.set()

    async def take(self, limit: int) -> list[Transition]:
        """Up to ``limit`` transitions, waiting for at least one."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        batch, self._items = self._items[:limit], self._items[limit:]
        return batch

    def done(self, count: int) -> None:
        """Mark ``count`` taken transitions as committed."""
        self._unfinished -= count
        if not self._unfinished:
            self._idle.set()

    async def drained(self) -> None:
        """Wait until everything put has been committed."""
        await self._idle.wait()
