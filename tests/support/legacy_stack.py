"""The image pipeline's task path, in-process: bridge, ocr, legacy-error and legacy-success.

The stages are those of ``processors.pipeline.build`` with their real
processors; only the legacy lists get names of their own per test (the mirror
stages run the same ``mirror_errors`` / ``mirror_success`` code onto them), so
tests sharing one Redis keep apart. Tasks that fail validation or fetch never
reach Triton, so none is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from processors.legacy import mirror_errors, mirror_success
from processors.pipeline import TASK_STAGES, build
from streams.bridge import ListIngress
from streams.engine.runner import StageRunner, stage_runners
from streams.metrics import Metrics
from streams.redis.bridge import IngressRunner
from streams.redis.keys import Keys
from streams.redis.transport import RedisTransport
from streams.settings import Settings
from tests.support.pipelines import wait_for


@dataclass
class LegacyStack:
    redis: Redis
    keys: Keys
    tasks: str
    success: str
    error: str
    runners: list[StageRunner] = field(default_factory=list)
    jobs: list[asyncio.Task[None]] = field(default_factory=list)

    async def outcomes(self, count: int, timeout: float = 20.0) -> tuple[list[Any], list[Any]]:
        """(success, error) list entries once ``count`` arrived and every stage is idle."""
        async def arrived() -> bool:
            total = await self.redis.llen(self.success) + await self.redis.llen(self.error)
            return total >= count and await self.idle()

        await wait_for(arrived, timeout=timeout)
        return ([orjson.loads(x) for x in await self.redis.lrange(self.success, 0, -1)],
                [orjson.loads(x) for x in await self.redis.lrange(self.error, 0, -1)])

    async def idle(self) -> bool:
        """Nothing waits in the list, and every stage's group has read and acknowledged all."""
        if await self.redis.llen(self.tasks):
            return False
        for runner in self.runners:
            groups = await self.redis.xinfo_groups(self.keys.stream(runner.stage.source))
            mine = [g for g in groups if g["name"] == runner.stage.group.encode()]
            if not mine or mine[0]["pending"] or mine[0]["lag"]:
                return False
        return True

    def alive(self) -> list[bool]:
        """Whether each runner's task is still running (none ended, by error or otherwise)."""
        return [not job.done() for job in self.jobs]


@contextlib.asynccontextmanager
async def legacy_stack(redis: Redis, keys: Keys, settings: Settings,
                       secrets: Sequence[str] = ()) -> AsyncIterator[LegacyStack]:
    """Run the task path while the block runs; stop it gracefully after."""
    pipeline = build(settings)
    tag = uuid.uuid4().hex[:8]
    stack = LegacyStack(redis, keys, f"test:{tag}:tasks", f"test:{tag}:success", f"test:{tag}:error")
    stages = [
        pipeline.stage("ocr"),
        dataclasses.replace(pipeline.stage("legacy-error"), processor=mirror_errors(stack.error, TASK_STAGES)),
        dataclasses.replace(pipeline.stage("legacy-success"), processor=mirror_success([stack.success])),
    ]
    metrics = Metrics(CollectorRegistry())
    transport = RedisTransport(redis, keys, settings)
    stack.runners = [r for s in stages
                     for r in stage_runners(transport, s, settings, metrics, pipeline.middleware, secrets,
                                            id_fields=pipeline.id_fields, prioritized=pipeline.prioritized)]
    bridge = IngressRunner(redis, keys, ListIngress("legacy-ingress", stack.tasks, "tasks"), settings.status_ttl,
                           settings.events_maxlen, settings.max_payload_bytes, id_fields=pipeline.id_fields)
    stack.jobs = [asyncio.create_task(r.run()) for r in stack.runners]
    stack.jobs.append(asyncio.create_task(bridge.run()))
    await asyncio.gather(*(r.started.wait() for r in stack.runners))
    try:
        yield stack
    finally:
        for runner in stack.runners:
            runner.stop()
        bridge.stop()
        await asyncio.gather(*stack.jobs, return_exceptions=True)
        for close in pipeline.on_stop:
            await close()
