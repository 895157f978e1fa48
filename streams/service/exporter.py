"""The exporter: stream, group, dead-letter and retained-state figures of every pipeline, for Prometheus.

Workers report their own stages; lag must be visible also when no worker of
a stage runs (that is when it matters), so this process samples every stream
under the namespace, found with SCAN, and serves the gauges on its own port.
Retained dead letters (``millstream_retained_records{kind="dlq"}``) are the
sum over every stage found, which only the exporter sees. It also applies
the count bounds on status and dedup records of every pipeline it finds
(``streams.redis.retention.enforce``: idempotent, so it may run beside other upkeep).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.redis import retention, stats
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.service.endpoint import serve_metrics
from streams.settings import Settings

log = logging.getLogger("millstream.exporter")


async def sample_all(settings: Settings, metrics: Metrics) -> int:
    """Sample every stream once; return how many were found."""
    redis = connect(settings)
    try:
        found = await stats.discover(redis, settings.namespace)
        stages: dict[Keys, set[str]] = defaultdict(set)
        for keys, stream in found:
            sampled = await stats.sample(redis, keys, stream)
            metrics.observe(keys.pipeline, sampled)
            stages[keys].update(g.group for g in sampled.groups)
        for keys, groups in stages.items():
            await retention.enforce(redis, keys, settings)
            dead = await retention.dead_letters(redis, keys, sorted(groups))
            metrics.observe_retained(keys.pipeline, [dead])
    finally:
        await redis.aclose()
    return len(found)


async def run(settings: Settings, registry: CollectorRegistry | None = None) -> None:
    """Serve /metrics on ``settings.metrics_port`` and refresh every ``stats_interval`` seconds."""
    registry = registry or CollectorRegistry()
    metrics = Metrics(registry)
    serve_metrics(settings, registry)
    while True:
        try:
            count = await sample_all(settings, metrics)
            log.debug("sampled %d streams", count)
        except Exception as error:  # noqa: BLE001 - keep serving the last figures
            log.warning("sampling failed: %s", error)
        await asyncio.sleep(settings.stats_interval)
