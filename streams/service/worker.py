"""Running a pipeline's stages in this process: signals, metrics endpoint, stats.

``run(pipeline, settings)`` runs until SIGTERM or SIGINT, then stops every
stage gracefully (see StageRunner) and returns, so the process exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from streams.engine.runner import StageRunner, stage_runners
from streams.metrics import Metrics
from streams.pipeline import Pipeline
from streams.redis import library, stats
from streams.redis.bridge import IngressRunner
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.transport import RedisTransport
from streams.service.endpoint import serve_metrics
from streams.service.health import Health, tracked
from streams.settings import Settings, secrets
from streams.timing import pause

log = logging.getLogger("millstream.worker")
GC_YOUNG = 10_000


async def _stats_loop(redis: Redis, keys: Keys, streams: Sequence[str], metrics: Metrics,
                      interval: float, stop: asyncio.Event) -> None:
    while True:
        for stream in streams:
            try:
                metrics.observe(keys.pipeline, await stats.sample(redis, keys, stream))
            except Exception as error:  # noqa: BLE001 - a missed sample is not fatal
                log.warning("stats of %s failed: %s", stream, error)
        if await pause(stop, interval):
            return


def _settle_heap() -> None:
    """Exempt what start-up built from garbage collection, and collect young objects less often.

    A full collection walks every tracked object, and the modules of a worker
    (redis, prometheus, typer, a pipeline's own) are most of them: on a no-op
    stage collections took a third of the CPU (docs/decisions/0011-worker-gc.md).
    Entries in flight are short-lived and acyclic, so young collections find
    little; they run per GC_YOUNG container allocations (at least) instead of 700.
    """
    gc.collect()
    gc.freeze()
    young, *older = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG), *older)


async def run(pipeline: Pipeline, settings: Settings, stage_names: Sequence[str] = (),
              registry: CollectorRegistry | None = None) -> None:
    """Run the named stages (all by default) until SIGTERM/SIGINT."""
    stages, bridges = pipeline.parts(stage_names)
    registry = registry or pipeline.registry or CollectorRegistry()
    metrics = Metrics(registry)
    health = Health(settings.heartbeat_ttl)
    serve_metrics(settings, registry, health)
    keys = Keys(settings.namespace, pipeline.name, lists=pipeline.list_keys)
    redis = connect(settings)
    await library.load(redis)
    known = secrets()
    transport = RedisTransport(redis, keys, settings)
    runners: list[StageRunner | IngressRunner] = [
        runner for s in stages
        for runner in stage_runners(transport, s, settings, metrics, pipeline.middleware, known,
                                    id_fields=pipeline.id_fields, results=pipeline.results,
                                    prioritized=pipeline.prioritized)
    ]
    runners += [IngressRunner(redis, keys, b, settings.status_ttl, settings.events_maxlen,
                              settings.max_payload_bytes, id_fields=pipeline.id_fields) for b in bridges]
    _settle_heap()
    def stop_all() -> None:
        health.stopping()
        for runner in runners:
            runner.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_all)
    log.info("consumer %s running %s of pipeline %s", settings.consumer,
             ", ".join([s.name for s in stages] + [b.name for b in bridges]), pipeline.name)
    try:
        async with asyncio.TaskGroup() as tg:
            sources = sorted({lane.source for s in stages for lane in s.lanes})
            done = asyncio.Event()
            tg.create_task(_stats_loop(redis, keys, sources, metrics, settings.stats_interval, done))
            tg.create_task(health.probe(redis, done))
            await asyncio.gather(*(tracked(health, r) for r in runners))
            done.set()  # not cancel(): a cancellation can be lost inside a Redis call
    finally:
        for close in pipeline.on_stop:
            try:
                await close()
            except Exception as error:  # noqa: BLE001 - one failing close must not skip the others
                log.warning("closing %s failed: %s", close, error)
        await redis.aclose()
    log.info("consumer %s stopped cleanly", settings.consumer)
