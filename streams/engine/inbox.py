"""Inbox: the bounded in-process buffer between the reader and the handlers.

``held`` counts entries read from Redis and not yet committed, wherever they
are (queued, in a handler, awaiting commit); each remembers the fence token
it was read under (streams.redis.commit). The reader asks for ``room()``
before each read, so at most ``capacity`` entries are ever held: no reading
ahead, and backpressure reaches Redis. While ``paused`` (an operator paused
the stage) there is no room at all: held entries are still handled and
released, nothing new is read. ``close()`` returns the entries no handler
started, so shutdown can hand them back at once. ``withdraw`` takes queued
entries out again, still held, for a cancel (their outcome is committed instead).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Container, Iterable

from streams.delivery import Delivery


class Inbox:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[Delivery] = deque()
        self._held: dict[str, tuple[float, str]] = {}
        self._read_at: dict[str, int] = {}  # entry id -> when it was read (unix ms), never renewed
        self._changed = asyncio.Condition()
        self.closed = False
        self.paused = False

    @property
    def held(self) -> int:
        return len(self._held)

    def __contains__(self, entry_id: object) -> bool:
        """Whether entry ``entry_id`` is held."""
        return entry_id in self._held

    def free(self) -> int:
        return max(0, self.capacity - len(self._held))

    def holding(self, limit: int) -> dict[str, int]:
        """Up to ``limit`` held entries and when each was read (unix ms), oldest first."""
        return dict(itertools.islice(self._read_at.items(), limit))

    def held_since(self, older_than: float) -> list[str]:
        """Ids of entries held since before monotonic time ``older_than`` (for lease renewal)."""
        return [i for i, (at, _) in self._held.items() if at < older_than]

    def suspects(self, entry_ids: Iterable[str], token: str) -> list[int]:
        """Positions of the ids not held under fence ``token`` (read under an older one)."""
        held, missing = self._held, (0.0, None)
        return [i for i, e in enumerate(entry_ids) if held.get(e, missing)[1] != token]

    async def room(self) -> int:
        """Wait until at least one more entry may be held and the inbox is not paused; return how many."""
        async with self._changed:
            await self._changed.wait_for(lambda: (self.free() > 0 and not self.paused) or self.closed)
            return self.free()

    async def set_paused(self, paused: bool) -> None:
        """Give no room while ``paused``; resuming wakes the reader waiting in ``room``."""
        async with self._changed:
            self.paused = paused
            self._changed.notify_all()

    async def hold(self, deliveries: Iterable[Delivery], token: str) -> None:
        """Count ``deliveries`` as held (read from Redis under fence ``token``, not yet committed)."""
        now, wall = time.monotonic(), int(time.time() * 1000)
        for d in deliveries:
            self._held[d.id] = (now, token)
            self._read_at.setdefault(d.id, wall)

    async def enqueue(self, deliveries: Iterable[Delivery]) -> None:
        """Queue held deliveries for the handlers."""
        async with self._changed:
            self._queue.extend(deliveries)
            self._changed.notify_all()

    def touch(self, ids: Iterable[str]) -> None:
        """Mark ``ids`` as renewed now (their lease was extended in Redis)."""
        now = time.monotonic()
        for i in ids:
            if i in self._held:
                self._held[i] = (now, self._held[i][1])

    async def take(self, limit: int = 1) -> list[Delivery]:
        """Up to ``limit`` queued deliveries, waiting for one; [] once closed."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._queue) or self.closed)
            if self.closed:
                return []
            return [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]

    def queued(self) -> list[Delivery]:
        """The deliveries waiting for a handler, in order."""
        return list(self._queue)

    def withdraw(self, request_ids: Container[str]) -> list[Delivery]:
        """Take the queued deliveries of tasks ``request_ids`` out of the queue; they stay held."""
        taken = [d for d in self._queue if d.request_id in request_ids]
        if taken:
            self._queue = deque(d for d in self._queue if d.request_id not in request_ids)
        return taken

    async def release(self, ids: Iterable[str]) -> None:
        """Forget committed (or fenced-off) entries, making room for more."""
        async with self._changed:
            for i in ids:
                self._held.pop(i, None)
                self._read_at.pop(i, None)
            self._changed.notify_all()

    async def forget_queued(self) -> int:
        """Drop the queued deliveries, held no more (another consumer took them); how many."""
        dropped = [d.id for d in self._queue]
        self._queue.clear()
        await self.release(dropped)
        return len(dropped)

    async def close(self) -> list[Delivery]:
        """Stop handing out work; return the queued deliveries no handler started."""
        async with self._changed:
            self.closed = True
            unstarted = list(self._queue)
            self._queue.clear()
            self._changed.notify_all()
            return unstarted
