"""LaneLease: whether this consumer reads an owned lane (a keyed stage's router or partition) now.

Each owned lane has one reader at a time: the holder of its lease in the
transport (``OwnedReader``), renewed with every heartbeat and lost with it, so
a dead or stalled worker's lanes move within the heartbeat TTL. Which live
consumer should hold which lane is a fixed rule every consumer computes alike:
the lane at ``index`` of the stage's ``count`` owned lanes goes to the live
consumer at ``index mod n`` of the sorted live ones. A consumer takes a free
lane it is preferred for; one that holds a lane preferred for another stops
reading it, lets what it holds finish and commit, and only then releases it,
so the next holder starts after the last outcome of the previous one.
"""

from __future__ import annotations

import asyncio

from streams.transport import StageTransport


class LaneLease:
    def __init__(self, transport: StageTransport, consumer: str, index: int, count: int, ttl: float) -> None:
        self.transport, self.consumer = transport, consumer
        self.index, self.count, self.ttl_ms = index, count, int(ttl * 1000)
        self.held = False
        self.draining = False  # held, preferred for another consumer: read nothing new, then release
        self.changed = asyncio.Event()  # set whenever ``held`` or ``draining`` changes

    async def preferred(self) -> bool:
        """Whether the rule gives this lane to this consumer, among the consumers alive now."""
        live = await self.transport.live_consumers()
        if self.consumer not in live:
            live = sorted([*live, self.consumer])
        return live[self.index % len(live)] == self.consumer

    def set(self, held: bool, draining: bool = False) -> None:
        self.held, self.draining = held, draining
        self.changed.set()

    async def take(self) -> bool:
        return await self.transport.lease("take", self.ttl_ms)

    async def renew(self) -> bool:
        return await self.transport.lease("renew", self.ttl_ms)

    async def release(self) -> None:
        await self.transport.lease("release", self.ttl_ms)
        self.set(False)

    async def wait_held(self) -> None:
        """Return once the lane is held and not draining."""
        while not self.held or self.draining:
            self.changed.clear()
            await self.changed.wait()
