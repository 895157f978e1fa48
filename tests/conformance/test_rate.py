"""A stage's rate, on every transport: real StageRunners admit their attempts at it, together.

Two runners (consumers "a" and "b", as two workers would be) run stage "s"
with ``rate="20/s"``: slots 50 ms apart, shared through the transport's
limiter (Transport.limiter). On memory the limit lives on the broker and
waits sleep on its ManualClock, which the test moves on by one interval
whenever an attempt is asleep; on Redis it is GCRA on the server's clock and
real time passes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from streams.engine.runner import StageRunner
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.stage import Stage
from tests.conformance.conftest import Backend, MemoryBackend, RedisBackend
from tests.support.pipelines import wait_for

INTERVAL = 0.05
# On Redis a start lags its slot by a reply and a wake-up: two starts may come that much closer.
JITTER = {"memory": 1e-6, "redis": 0.02}


class Starts:
    """A processor recording when (the backend's time) each attempt began."""

    def __init__(self, backend: Backend) -> None:
        self.backend, self.at = backend, []

    def now(self) -> float:
        return self.backend.clock() if isinstance(self.backend, MemoryBackend) else time.time()

    async def __call__(self, message: Message) -> Sequence[Outgoing]:
        self.at.append(self.now())
        return [Outgoing(message.payload)]


@asynccontextmanager
async def running(backend: Backend, stage: Stage, consumer: str, metrics: Metrics,
                  grace: float = 2.0) -> AsyncIterator[StageRunner]:
    """A runner of ``stage``; stopping it, attempts still waiting for a slot get ``grace`` seconds."""
    if isinstance(backend, MemoryBackend):
        transport: Any = backend.memory
        base = backend.memory.settings
    else:
        assert isinstance(backend, RedisBackend)
        transport, base = backend.redis_transport, backend.settings
    settings = dataclasses.replace(base, consumer=consumer, heartbeat_ttl=1.0, claim_interval=0.2,
                                   trim_interval=60.0, shutdown_grace=grace)
    runner = StageRunner(transport, stage, settings, metrics)
    task = asyncio.create_task(runner.run())
    started = asyncio.create_task(runner.started.wait())
    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    try:
        yield runner
    finally:
        runner.stop()
        if isinstance(backend, MemoryBackend):
            backend.memory.wake()
        await asyncio.wait_for(task, 10)


def counted(registry: CollectorRegistry, name: str) -> float:
    return sum(s.value for m in registry.collect() for s in m.samples if s.name == name)


async def test_the_runners_of_a_stage_together_start_its_attempts_at_its_rate(backend: Backend) -> None:
    starts = Starts(backend)
    stage = Stage("s", "in", starts, sinks=["out"], concurrency=3, rate="20/s")
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    await backend.publish(8)

    async def all_started() -> bool:
        if isinstance(backend, MemoryBackend) and backend.clock.sleeping:
            backend.clock.advance(INTERVAL)
        return len(starts.at) >= 8

    async with AsyncExitStack() as both:
        for consumer in ("a", "b"):
            await both.enter_async_context(running(backend, stage, consumer, metrics))
        await wait_for(all_started, timeout=20)

    gaps = [later - earlier for earlier, later in zip(starts.at, starts.at[1:], strict=False)]
    assert min(gaps) >= INTERVAL - JITTER[backend.name], f"attempts {gaps} apart"
    assert starts.at[-1] - starts.at[0] >= 7 * INTERVAL - JITTER[backend.name]
    assert counted(registry, "millstream_stage_throttled_total") >= 6
    assert counted(registry, "millstream_stage_throttled_seconds_total") > 0


async def test_stages_without_a_rate_are_not_throttled_and_two_stages_limit_apart(backend: Backend) -> None:
    fast, slow = Starts(backend), Starts(backend)
    metrics = Metrics(CollectorRegistry())
    await backend.publish(4)
    stages = [Stage("s", "in", slow, sinks=["out"], rate="1/h"), Stage("x", "in", fast, rate="1/h"),
              Stage("y", "in", Starts(backend))]
    async with AsyncExitStack() as all_three:
        for stage in stages:
            await all_three.enter_async_context(running(backend, stage, "a", metrics, grace=0.2))

        async def first_of_each_started() -> bool:
            return len(fast.at) == len(slow.at) == 1 and len(stages[2].processor.at) == 4  # type: ignore[union-attr]

        await wait_for(first_of_each_started, timeout=10)
    assert len(fast.at) == len(slow.at) == 1, "one slot an hour: the next waits, stage by stage"
