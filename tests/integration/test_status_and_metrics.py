"""Lag, pending and dead-letter figures: sampled from Redis, shown by `millstream status`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from streams.metrics import Metrics
from streams.redis import stats
from streams.redis.consumer import GroupConsumer
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.tasks import task_status
from streams.settings import Settings
from tests.support.redis_server import free_port
from tests.support.workers import ROOT


async def make_backlog(redis: Redis, keys: Keys) -> None:
    """10 entries: 4 delivered (1 acked, 3 pending), 6 undelivered; 2 dead letters."""
    await Publisher(redis, keys).publish_many("in", [({"n": i}, None) for i in range(10)])
    group = GroupConsumer(redis, keys, "in", "work", "c1")
    await group.ensure_group()
    delivered = await group.read_new(4, 0)
    await redis.xack(keys.stream("in"), "work", delivered[0].id)
    await redis.set(keys.heartbeat("work", "c1"), int(time.time() * 1000), px=5000)
    for n in range(2):
        await redis.xadd(keys.dlq("work"), {"reason": f"r{n}"})


async def test_sample_reports_lag_pending_consumers_and_dead_letters(redis: Redis, keys: Keys):
    await make_backlog(redis, keys)
    sampled = await stats.sample(redis, keys, "in")
    assert (sampled.stream, sampled.length, sampled.delayed) == ("in", 10, 0)
    [g] = sampled.groups
    assert (g.group, g.lag, g.pending, g.consumers, g.live_consumers, g.dlq_length) == ("work", 6, 3, 1, 1, 2)
    assert 0 <= g.lag_seconds < 5 and 0 <= g.oldest_pending_seconds < 5 and g.heartbeat_age_seconds < 5


async def test_metrics_expose_the_sampled_figures(redis: Redis, keys: Keys):
    await make_backlog(redis, keys)
    registry = CollectorRegistry()
    Metrics(registry).observe(keys.pipeline, await stats.sample(redis, keys, "in"))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    group = (("group", "work"), ("pipeline", keys.pipeline), ("stream", "in"))
    assert samples[("millstream_group_lag_entries", group)] == 6
    assert samples[("millstream_group_pending", group)] == 3
    assert samples[("millstream_group_live_consumers", group)] == 1
    assert samples[("millstream_dlq_length", (("pipeline", keys.pipeline), ("stage", "work")))] == 2


async def test_metrics_report_the_retained_state_of_the_pipeline(redis: Redis, keys: Keys):
    await make_backlog(redis, keys)  # 10 tasks without request ids: status records, no dedup records
    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(5)])
    await redis.xadd(keys.errors, {"d": "{}"})
    registry = CollectorRegistry()
    Metrics(registry).observe(keys.pipeline, await stats.sample(redis, keys, "in"))
    found = {(s.name, s.labels["kind"]): s.value
             for family in text_string_to_metric_families(generate_latest(registry).decode())
             for s in family.samples if s.labels.get("pipeline") == keys.pipeline and "kind" in s.labels}
    records = {kind: found[("millstream_retained_records", kind)] for kind in ("status", "dedup", "events", "errors")}
    assert records == {"status": 15, "dedup": 5, "events": 2, "errors": 1}
    assert all(found[("millstream_retained_bytes", kind)] > 0 for kind in records)


async def test_status_command_prints_json_for_scripts(redis: Redis, keys: Keys, settings: Settings):
    await make_backlog(redis, keys)
    env = {**os.environ, "MILLSTREAM_REDIS_URL": settings.redis_url, "MILLSTREAM_NAMESPACE": "mst"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "streams", "status", "--json"],
                                   cwd=ROOT, env=env, capture_output=True, timeout=60, check=True)
    report = orjson.loads(done.stdout)
    [mine] = [s for s in report["streams"] if s["pipeline"] == keys.pipeline]
    assert mine["length"] == 10 and mine["groups"][0]["lag"] == 6 and mine["groups"][0]["dlq_length"] == 2
    table = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "streams", "status"],
                                    cwd=ROOT, env=env, capture_output=True, timeout=60, check=True, text=True)
    assert keys.pipeline in table.stdout and "oldest pending" in table.stdout


def test_unknown_setting_stops_a_command_naming_the_variable():
    env = {**os.environ, "MILLSTREAM_REDIS_URLL": "redis://x"}
    done = subprocess.run([sys.executable, "-m", "streams", "status"], cwd=ROOT, env=env,
                          capture_output=True, timeout=60, text=True)
    assert done.returncode != 0
    assert "MILLSTREAM_REDIS_URLL: unknown setting; did you mean MILLSTREAM_REDIS_URL?" in done.stderr


async def test_exporter_serves_group_figures_without_any_worker(redis: Redis, keys: Keys, settings: Settings):
    await make_backlog(redis, keys)
    port = free_port()
    env = {**os.environ, "MILLSTREAM_REDIS_URL": settings.redis_url, "MILLSTREAM_NAMESPACE": "mst",
           "MILLSTREAM_METRICS_PORT": str(port), "MILLSTREAM_STATS_INTERVAL": "0.2"}
    process = subprocess.Popen([sys.executable, "-m", "streams", "exporter"], cwd=ROOT, env=env,  # noqa: ASYNC220 - Popen does not wait
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        # The retained-state gauges are set after the group figures: wait for the last of them.
        text = await asyncio.to_thread(
            _scrape_until, port, f'millstream_retained_bytes{{kind="dlq",pipeline="{keys.pipeline}"}}')
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
    samples = {(s.name, s.labels.get("pipeline"), s.labels.get("group")): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("millstream_group_lag_entries", keys.pipeline, "work")] == 6
    assert samples[("millstream_group_live_consumers", keys.pipeline, "work")] == 1
    kinds = {(s.name, s.labels.get("kind")): s.value for f in text_string_to_metric_families(text)
             for s in f.samples if s.labels.get("pipeline") == keys.pipeline}
    assert kinds[("millstream_retained_records", "dlq")] == 2
    assert kinds[("millstream_retained_records", "status")] == 10
    assert kinds[("millstream_retained_bytes", "dlq")] > 0


async def test_the_exporter_applies_the_status_and_dedup_count_bounds(redis: Redis, keys: Keys, settings: Settings):
    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(30)])
    port = free_port()
    env = {**os.environ, "MILLSTREAM_REDIS_URL": settings.redis_url, "MILLSTREAM_NAMESPACE": "mst",
           "MILLSTREAM_METRICS_PORT": str(port), "MILLSTREAM_STATS_INTERVAL": "0.2",
           "MILLSTREAM_STATUS_MAX_RECORDS": "18", "MILLSTREAM_DEDUP_MAX_KEYS": "9"}
    process = subprocess.Popen([sys.executable, "-m", "streams", "exporter"], cwd=ROOT, env=env,  # noqa: ASYNC220 - Popen does not wait
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        needle = f'millstream_retained_records{{kind="status",pipeline="{keys.pipeline}"}} 0.0'
        await asyncio.to_thread(_scrape_until, port, needle)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
    assert await task_status(redis, keys, "r29", 3600) is None  # one bucket of 30 > 18: dropped whole
    before = {e.decode() for e, _ in await redis.xrange(keys.stream("in"))}
    assert await Publisher(redis, keys).publish("in", {"n": 0}, request_id="r0") not in before  # forgotten


def _scrape_until(port: int, needle: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                text = response.read().decode()
            if needle in text:
                return text
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"exporter on port {port} never reported {needle}")
        time.sleep(0.1)
