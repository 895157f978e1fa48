"""Run a whole Pipeline in this process, without Redis, and read what it wrote.

::

    async with run_pipeline(pipeline) as run:
        await run.publish("tasks", {"n": 1}, "r1")
        await run.drained()
        assert run.status("r1")["state"] == "forwarded"
        assert run.stream("done") == [{"n": 1, ...}]

Every stage of the pipeline runs in a real ``StageRunner`` (the production
engine: inbox, handlers, middleware, timeouts, retries, commits) over a
``MemoryTransport``. Ingress bridges (``Pipeline.bridges``, Redis lists moved
into streams by ms_ingress) are Redis-only and are not run: publish to their
stream instead. Lists written by ``Outgoing(list=...)`` are kept (``list``).

``drained`` is the barrier to wait on. The pipeline is drained when, for every
stage, its group has read every entry of its source and holds none pending
(so every transition was committed), and no retry waits in a stage source's
delayed set. While only retries wait, the harness moves the broker's clock
(a ManualClock, the default) to the earliest due time and moves the due
retries back into their stream, as the runners' promote upkeep would, so
backoff costs no real time. With a real clock it waits until they are due.
Likewise attempts waiting for a slot of their stage's ``rate`` sleep on the
ManualClock, which ``drained`` moves to the end of the earliest such sleep.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

import streams.testing.memory_functions as functions
from streams.codec import decode
from streams.engine.runner import StageRunner, stage_runners
from streams.metrics import Metrics
from streams.pipeline import Pipeline
from streams.priority import Level
from streams.redis.deadletters import DeadLetter
from streams.redis.publisher import Item
from streams.settings import Settings
from streams.testing.clock import ManualClock
from streams.testing.memory_broker import ERRORS_STREAM, MemoryBroker
from streams.testing.memory_publisher import MemoryPublisher
from streams.testing.memory_streams import format_id
from streams.testing.memory_transport import MemoryTransport

RATE_POLL = 0.01  # seconds to let attempts woken for their rate slot run before the clock moves again


class PipelineRun:
    """A running pipeline: publish to it, wait until it is drained, read its streams and records."""

    def __init__(self, pipeline: Pipeline, broker: MemoryBroker, transport: MemoryTransport,
                 runners: Sequence[StageRunner], tasks: Sequence[asyncio.Task[None]]) -> None:
        self.pipeline, self.broker, self.transport = pipeline, broker, transport
        self.runners, self._tasks = list(runners), list(tasks)
        self._lanes = [lane for s in pipeline.stages for lane in s.lanes]
        self.publisher = MemoryPublisher(broker, transport.settings, pipeline.prioritized)

    async def publish(self, stream: str, payload: Mapping[str, Any], request_id: str | None = None,
                      priority: Level | None = None) -> str:
        """Publish as the Redis Publisher does (dedup by request id, status "queued"); the entry id."""
        return await self.publisher.publish(stream, payload, request_id, priority)

    async def publish_many(self, stream: str, items: Sequence[Item],
                           priority: Level | None = None) -> list[str]:
        return await self.publisher.publish_many(stream, items, priority)

    async def drained(self, within: float = 5.0) -> None:
        """Wait until the pipeline is drained (see the module doc), at most ``within`` seconds.

        Raises AssertionError naming what is left when time is up, and the
        exception of a runner that stopped with one.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            self._raise_failed()
            left = self._unfinished()
            wait = deadline - loop.time()
            if left and self._rate_slot_next():
                await self._wait(min(wait, RATE_POLL))
                continue
            if not left:
                due = self._earliest_due()
                if due is None:
                    return
                if isinstance(self.broker.clock, ManualClock):
                    self.broker.clock.advance_to(due / 1000)
                if due <= self.broker.now_ms():
                    for stage in self._lanes:
                        functions.promote(self.broker, stage.source)
                    continue
                wait = min(wait, (due - self.broker.now_ms()) / 1000)
                left = [f"retries due in {due - self.broker.now_ms()} ms"]
            if deadline - loop.time() <= 0:
                raise AssertionError(f"pipeline {self.pipeline.name!r} not drained within {within}s: "
                                     + "; ".join(left))
            await self._wait(max(0.0, wait))

    def _unfinished(self) -> list[str]:
        left = []
        for stage in self._lanes:
            stream = self.broker.streams.get(stage.source)
            if stream is None:
                continue
            group = stream.groups.get(stage.group)
            last, pending = (group.last_delivered, len(group.pending)) if group else ((0, 0), 0)
            unread = len(stream.ids) - bisect.bisect_right(stream.ids, last)
            if unread or pending:
                left.append(f"stage {stage.name}: {unread} unread, {pending} pending")
        return left

    def _rate_slot_next(self) -> bool:
        """Move a ManualClock to the next end of a sleep (attempts waiting for a stage's rate slot)."""
        clock = self.broker.clock
        if not isinstance(clock, ManualClock) or (wake := clock.next_wake) is None:
            return False
        clock.advance_to(wake)
        return True

    def _earliest_due(self) -> int | None:
        due = [at for s in self._lanes for at in self.broker.delayed.get(s.source, {}).values()]
        return min(due, default=None)

    def _raise_failed(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                raise error

    async def _wait(self, seconds: float) -> None:
        """Until the broker changes, a runner ends, or ``seconds`` pass."""
        change = asyncio.ensure_future(self.broker.wait_change(seconds))
        running = [t for t in self._tasks if not t.done()]  # one that ended normally must not wake us
        await asyncio.wait([change, *running], return_when=asyncio.FIRST_COMPLETED)
        change.cancel()

    # -- what the pipeline wrote -------------------------------------------------

    def status(self, request_id: str) -> dict[str, Any] | None:
        """The task's record {"stage", "state", "entry", "at"[, "detail"][, "trail"]}, as task_status."""
        found = self.broker.status.get(request_id)
        return dict(found) if found is not None else None

    def entries(self, stream: str) -> list[tuple[str, dict[bytes, bytes]]]:
        """The entries of ``stream`` still kept (streams a stage reads are trimmed by its upkeep)."""
        found = self.broker.streams.get(stream)
        if found is None:
            return []
        return [(format_id(i), _fields(found.entries[i])) for i in found.ids]

    def stream(self, stream: str) -> list[dict[str, Any]]:
        """The decoded payloads of ``stream``'s entries, in order."""
        return [decode(fields)[0] for _, fields in self.entries(stream)]

    def errors(self) -> list[dict[str, Any]]:
        """The error records written (streams.engine.error_records), in order."""
        return self.stream(ERRORS_STREAM)

    def dead_letters(self, stage: str) -> list[DeadLetter]:
        """The dead letters of ``stage``, parsed as the dead-letter API parses them."""
        found = self.broker.dead_letters.get(stage)
        if found is None:
            return []
        return [DeadLetter.parse(stage, format_id(i), _fields(found.entries[i])) for i in found.ids]

    def events(self) -> list[dict[str, Any]]:
        """The events stream: one {"stage", "at", "t"} per commit, "t" listing [request_id, state, entry].

        A pause or resume (``broker.pause``) adds {"stage", "at", "control", "by"}, without "t".
        """
        return list(self.broker.events)

    def list(self, name: str) -> builtins.list[Any]:
        """The JSON values pushed onto list ``name`` (``Outgoing(list=...)``), in order."""
        return [orjson.loads(item) for item in self.broker.lists.get(name, [])]


def _fields(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=False))


@contextlib.asynccontextmanager
async def run_pipeline(pipeline: Pipeline, settings: Settings | None = None, *,
                       broker: MemoryBroker | None = None,
                       secrets: Sequence[str] = ()) -> AsyncIterator[PipelineRun]:
    """Run every stage of ``pipeline`` on ``broker`` (default: a new one on a ManualClock).

    On leaving the block every runner stops gracefully (unstarted entries are
    handed back, as at a shutdown), then the pipeline's ``on_stop`` closes run.
    """
    broker = broker or MemoryBroker(ManualClock())
    settings = settings or Settings(consumer="memory")
    transport = MemoryTransport(broker, pipeline.name, settings)
    metrics = Metrics(CollectorRegistry())
    runners = [r for s in pipeline.stages
               for r in stage_runners(transport, s, settings, metrics, pipeline.middleware, secrets,
                                      id_fields=pipeline.id_fields, results=pipeline.results,
                                      prioritized=pipeline.prioritized)]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    run = PipelineRun(pipeline, broker, transport, runners, tasks)
    try:
        for runner, task in zip(runners, tasks, strict=True):
            started = asyncio.ensure_future(runner.started.wait())
            await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
            run._raise_failed()
        yield run
    finally:
        for runner in runners:
            runner.stop()
        transport.wake()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for close in pipeline.on_stop:
            await close()
    for result in results:
        if isinstance(result, BaseException):
            raise result
