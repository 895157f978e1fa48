"""Pausing a stage, on every transport: a real StageRunner over the memory broker and over Redis.

The pause itself is made as an operator makes it: on Redis with
streams.redis.control, on memory with ``MemoryBroker.pause``. The runner sees
it in its upkeep (``StageTransport.paused``) and parks its reader;
``runner.paused`` is the barrier that says no read or claim starts any more.
"Nothing happened" is checked after the runner renewed its heartbeat twice
more: two more rounds of upkeep, every claim interval among them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from streams.engine.runner import StageRunner
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.redis import control
from streams.stage import Stage
from tests.conformance.conftest import Backend, MemoryBackend, RedisBackend
from tests.support.pipelines import wait_for

NOW = 1


class Gate:
    """A processor that forwards each message once ``opened``; ``entered`` counts those begun."""

    def __init__(self, opened: bool = True) -> None:
        self.open = asyncio.Event()
        if opened:
            self.open.set()
        self.entered = 0

    async def __call__(self, message: Message) -> Sequence[Outgoing]:
        self.entered += 1
        await self.open.wait()
        return [Outgoing(message.payload)]


async def pause(backend: Backend, stage: str = "s") -> None:
    if isinstance(backend, MemoryBackend):
        backend.broker.pause(stage, "oncall-jo")
    else:
        assert isinstance(backend, RedisBackend)
        await control.pause(backend.redis, backend.keys, stage, "oncall-jo", 1000)


async def resume(backend: Backend, stage: str = "s") -> None:
    if isinstance(backend, MemoryBackend):
        backend.broker.resume(stage, "oncall-jo")
    else:
        assert isinstance(backend, RedisBackend)
        await control.resume(backend.redis, backend.keys, stage, "oncall-jo", 1000)


async def control_events(backend: Backend) -> list[tuple[str, str, str]]:
    """(stage, control, by) of the events stream's pause and resume entries."""
    if isinstance(backend, MemoryBackend):
        found = [{k: str(v) for k, v in e.items()} for e in backend.broker.events]
    else:
        assert isinstance(backend, RedisBackend)
        found = [{k.decode(): v.decode() for k, v in e.items()}
                 for _, e in await backend.redis.xrange(backend.keys.events)]
    return [(e["stage"], e["control"], e["by"]) for e in found if "control" in e]


async def heartbeat(backend: Backend, consumer: str) -> int:
    """What the heartbeat of ``consumer`` of group "s" holds: its expiry (memory) or when it was sent (Redis)."""
    if isinstance(backend, MemoryBackend):
        return backend.broker.heartbeats.get(("s", consumer), 0)
    assert isinstance(backend, RedisBackend)
    return int(await backend.redis.get(backend.keys.heartbeat("s", consumer)) or 0)


async def two_more_heartbeats(backend: Backend, consumer: str = "a") -> None:
    for _ in range(2):
        before = await heartbeat(backend, consumer)
        await backend.elapse(0.1)

        async def renewed(before: int = before) -> bool:
            return await heartbeat(backend, consumer) > before

        await wait_for(renewed, timeout=5)


@asynccontextmanager
async def running(backend: Backend, gate: Gate, consumer: str = "a"
                  ) -> AsyncIterator[tuple[StageRunner, CollectorRegistry]]:
    """A runner of stage "s" as ``consumer``, and the registry of its metrics."""
    if isinstance(backend, MemoryBackend):
        transport: Any = backend.memory
        base = backend.memory.settings
    else:
        assert isinstance(backend, RedisBackend)
        transport, base = backend.redis_transport, backend.settings
    settings = dataclasses.replace(base, consumer=consumer, heartbeat_ttl=0.3, claim_interval=0.05,
                                   trim_interval=60.0, shutdown_grace=2.0)
    registry = CollectorRegistry()
    runner = StageRunner(transport, Stage("s", "in", gate, sinks=["out"], concurrency=2), settings,
                         Metrics(registry))
    task = asyncio.create_task(runner.run())
    started = asyncio.create_task(runner.started.wait())
    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    try:
        yield runner, registry
    finally:
        runner.stop()
        if isinstance(backend, MemoryBackend):
            backend.memory.wake()
        await asyncio.wait_for(task, 10)


async def outputs(backend: Backend) -> list[Any]:
    return [orjson.loads(f[b"d"])["n"] for _, f in await backend.entries("out")]


def until_out(backend: Backend, n: int) -> Any:
    async def check() -> bool:
        return len(await outputs(backend)) >= n
    return check


def gauge(registry: CollectorRegistry) -> float:
    """``millstream_stage_paused`` of the one stage in ``registry``."""
    return sum(s.value for m in registry.collect() for s in m.samples if s.name == "millstream_stage_paused")


def is_paused(runner: StageRunner) -> Any:
    async def check() -> bool:
        return runner.paused
    return check


async def test_the_transport_reports_a_pause_and_each_change_is_one_event(backend: Backend):
    [a] = [backend.transport("a")]
    await a.join()
    assert await a.paused() is False

    await pause(backend)
    await pause(backend)  # already paused: no change, no event
    assert await a.paused() is True
    assert await backend.transport("a2").paused() is True, "a pause is the stage's, not one consumer's"
    assert await backend.transport("x1", Stage("x", "in", Gate())).paused() is False

    await resume(backend)
    await resume(backend)
    assert await a.paused() is False
    assert await control_events(backend) == [("s", "paused", "oncall-jo"), ("s", "resumed", "oncall-jo")]


async def test_a_paused_stage_reads_nothing_new_keeps_its_heartbeat_and_resumes(backend: Backend):
    async with running(backend, Gate()) as (runner, registry):
        await backend.publish(2)
        await wait_for(until_out(backend, 2))

        await pause(backend)
        await wait_for(is_paused(runner))
        await backend.publish(3, start=2)
        await two_more_heartbeats(backend)

        assert await outputs(backend) == [0, 1]
        assert await backend.pending() == []
        assert gauge(registry) == 1

        await resume(backend)
        await wait_for(until_out(backend, 5))
        assert sorted(await outputs(backend)) == [0, 1, 2, 3, 4]
        assert not runner.paused and gauge(registry) == 0


async def test_a_paused_stage_finishes_and_commits_the_entries_it_holds(backend: Backend):
    gate = Gate(opened=False)
    async with running(backend, gate) as (runner, _):
        await backend.publish(2)

        async def both_entered() -> bool:
            return gate.entered == 2
        await wait_for(both_entered)

        await pause(backend)
        await wait_for(is_paused(runner))
        await backend.publish(2, start=2)
        gate.open.set()
        await wait_for(until_out(backend, 2))
        await two_more_heartbeats(backend)

        assert sorted(await outputs(backend)) == [0, 1]
        assert await backend.pending() == [], "held entries are committed while paused"

        await resume(backend)
        await wait_for(until_out(backend, 4))


async def test_a_paused_stage_claims_nothing_from_a_dead_consumer_until_resumed(backend: Backend):
    dead = backend.transport("dead")
    await dead.join()
    ids = await backend.publish(2)
    await dead.read_new(10, NOW)  # read and never heartbeated: its entries may be claimed at once
    await pause(backend)

    async with running(backend, Gate()) as (runner, _):
        await wait_for(is_paused(runner))
        await two_more_heartbeats(backend)
        assert await backend.pending() == [(i, "dead", 1) for i in ids], "a runner started paused claims nothing"

        await resume(backend)
        await wait_for(until_out(backend, 2))
        assert await backend.pending() == []
