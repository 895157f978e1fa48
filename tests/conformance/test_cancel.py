"""Cancelling a task by request id, on every transport: a real StageRunner over the memory broker and Redis.

The cancel is made as an operator makes it: on Redis with streams.redis.control,
on memory with ``MemoryBroker.cancel``. Runners learn that cancels exist in their
upkeep (``runner.cancels.active`` is the barrier for "the next read is checked");
a cancelled task ends as State.CANCELLED with one error record saying who and why.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from streams.engine.runner import StageRunner
from streams.metrics import Metrics
from streams.redis import control
from streams.stage import Stage
from streams.transport import Cancel
from tests.conformance.conftest import Backend, MemoryBackend, RedisBackend
from tests.conformance.test_pause import Gate, outputs, until_out
from tests.support.pipelines import wait_for

REASON = "customer withdrew the order"


async def cancel(backend: Backend, request_id: str, reason: str = REASON) -> None:
    if isinstance(backend, MemoryBackend):
        backend.broker.cancel(request_id, "oncall-jo", reason)
    else:
        assert isinstance(backend, RedisBackend)
        await control.cancel(backend.redis, backend.keys, request_id, "oncall-jo", reason, 3600)


async def cancel_events(backend: Backend) -> list[tuple[str, str, str, str]]:
    """(stage, control, by, request_id) of the events stream's cancel entries."""
    if isinstance(backend, MemoryBackend):
        found = [{k: str(v) for k, v in e.items()} for e in backend.broker.events]
    else:
        assert isinstance(backend, RedisBackend)
        found = [{k.decode(): v.decode() for k, v in e.items()}
                 for _, e in await backend.redis.xrange(backend.keys.events)]
    return [(e["stage"], e["control"], e["by"], e["request_id"]) for e in found if e.get("control") == "cancelled"]


async def error_messages(backend: Backend) -> list[tuple[str, str, str]]:
    """(request_id, stage, error_message) of every error record."""
    records = [orjson.loads(f[b"d"]) for _, f in await backend.entries("errors")]
    return [(r["request_id"], r["stage"], r["error_message"]) for r in records]


def ended(backend: Backend, request_id: str) -> Any:
    async def check() -> bool:
        status = await backend.status(request_id)
        return status is not None and status["state"] == "cancelled"
    return check


@asynccontextmanager
async def running(backend: Backend, gate: Gate, concurrency: int = 2) -> AsyncIterator[StageRunner]:
    """A runner of stage "s" (in -> out) as consumer "a"."""
    if isinstance(backend, MemoryBackend):
        transport: Any = backend.memory
        base = backend.memory.settings
    else:
        assert isinstance(backend, RedisBackend)
        transport, base = backend.redis_transport, backend.settings
    settings = dataclasses.replace(base, consumer="a", heartbeat_ttl=0.3, claim_interval=0.05,
                                   trim_interval=60.0, shutdown_grace=2.0)
    runner = StageRunner(transport, Stage("s", "in", gate, sinks=["out"], concurrency=concurrency),
                         settings, Metrics(CollectorRegistry()))
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
    assert task.result() is None


def knows_cancels(runner: StageRunner) -> Any:
    async def check() -> bool:
        return runner.cancels.active
    return check


async def test_the_transport_reports_cancels_and_each_new_one_is_one_event(backend: Backend):
    a = backend.transport("a")
    await a.join()
    assert await a.cancels() is False
    assert await a.cancelled(["r1"]) == {}

    await cancel(backend, "r1")
    await cancel(backend, "r1", "again")  # already cancelled: no change, no event

    assert await a.cancels() is True
    assert await a.cancelled(["r0", "r1", "r2"]) == {"r1": Cancel("oncall-jo", REASON)}
    assert await backend.transport("x1", Stage("x", "in", Gate())).cancelled(["r1"]) == {
        "r1": Cancel("oncall-jo", REASON)}, "a cancel is the task's, whatever stage reads it"
    assert await cancel_events(backend) == [("cancel", "cancelled", "oncall-jo", "r1")]


async def test_a_queued_task_that_was_cancelled_is_skipped_and_ends_cancelled_with_one_error_record(
    backend: Backend,
):
    gate = Gate()
    async with running(backend, gate) as runner:
        await cancel(backend, "r1")
        await wait_for(knows_cancels(runner))
        await backend.publish(3)
        await wait_for(until_out(backend, 2))
        await wait_for(ended(backend, "r1"))

    assert sorted(await outputs(backend)) == [0, 2]
    assert gate.entered == 2, "the cancelled task never reached the processor"
    assert await error_messages(backend) == [("r1", "s", f"cancelled by oncall-jo: {REASON}")]
    status = await backend.status("r1")
    assert status is not None and status["detail"] == {"error": f"cancelled by oncall-jo: {REASON}"}
    assert await backend.pending() == [] and await backend.delayed("in") == 0


async def test_a_running_handler_is_cancelled_cooperatively_and_the_attempt_ends_cancelled(backend: Backend):
    gate = Gate(opened=False)
    async with running(backend, gate) as runner:
        await backend.publish(1)

        async def entered() -> bool:
            return gate.entered == 1
        await wait_for(entered)

        await cancel(backend, "r0")
        await wait_for(ended(backend, "r0"))
        assert await backend.pending() == []
        assert await backend.delayed("in") == 0, "a cancel is not a retry"
        assert await error_messages(backend) == [("r0", "s", f"cancelled by oncall-jo: {REASON}")]
        assert runner.cancels.cancelling == {}

        gate.open.set()  # the worker lives on: the next task runs
        await backend.publish(1, start=1)
        await wait_for(until_out(backend, 1))
    assert await outputs(backend) == [1]


async def test_entries_a_lone_worker_took_but_has_not_started_are_skipped_once_cancelled(backend: Backend):
    gate = Gate(opened=False)
    async with running(backend, gate, concurrency=1) as runner:
        await backend.publish(3)

        async def entered() -> bool:
            return gate.entered == 1
        await wait_for(entered)  # r0 runs; r1 and r2 were taken with it

        await cancel(backend, "r2")

        async def marked() -> bool:
            return bool(runner.cancels.skip)
        await wait_for(marked)
        gate.open.set()
        await wait_for(ended(backend, "r2"))
        await wait_for(until_out(backend, 2))

    assert sorted(await outputs(backend)) == [0, 1]
    assert gate.entered == 2
    assert await error_messages(backend) == [("r2", "s", f"cancelled by oncall-jo: {REASON}")]


async def test_a_cancel_issued_while_no_worker_runs_takes_effect_when_one_starts(backend: Backend):
    await cancel(backend, "r1")
    await backend.publish(3)
    gate = Gate()
    async with running(backend, gate):
        await wait_for(until_out(backend, 2))
        await wait_for(ended(backend, "r1"))
    assert sorted(await outputs(backend)) == [0, 2]
    assert gate.entered == 2
    assert [rid for rid, _, _ in await error_messages(backend)] == ["r1"]


async def test_a_stage_reading_the_errors_stream_never_cancels_the_record_of_a_cancelled_task(backend: Backend):
    """The record of a cancel is the task's outcome: a mirror of error records must still see it."""
    if isinstance(backend, MemoryBackend):
        transport: Any = backend.memory
        base = backend.memory.settings
    else:
        assert isinstance(backend, RedisBackend)
        transport, base = backend.redis_transport, backend.settings
    settings = dataclasses.replace(base, consumer="m", claim_interval=0.05)
    runner = StageRunner(transport, Stage("mirror", "errors", Gate(), sinks=["mirrored"]), settings,
                         Metrics(CollectorRegistry()))
    await cancel(backend, "r1")
    await runner.cancels.follow()
    assert runner.cancels.active is False, "a follower does not even look"
