"""The lag alert end to end: real Prometheus and Alertmanager over a real worker and exporter.

Prometheus runs deploy's rules with every duration scaled by 1/100 (so
``for: 5m`` lasts 3 s), scraping the worker and the exporter every second.
While the consuming stage is stopped, published entries age past the lag
threshold: the alert must go pending, then firing, reach a webhook through
Alertmanager, and resolve (and be delivered as resolved) once the stage runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as sync_redis

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.conftest import require_tool
from tests.e2e.alerting_support import (
    Alertmanager,
    Exporter,
    Prometheus,
    WebhookReceiver,
    scaled_thresholds,
    wait_for,
)
from tests.support.redis_server import RedisServer, free_port
from tests.support.workers import WorkerProcess

LAG_ALERT = "MillstreamLagSecondsHigh"


@dataclass
class Stack:
    redis_url: str
    keys: Keys
    directory: Path
    worker_port: int
    prometheus: Prometheus
    webhook: WebhookReceiver

    def start_worker(self) -> WorkerProcess:
        """The copier stage ("in" -> "out"), always on the port Prometheus scrapes.

        The worker keeps the default stats interval (5 s): with 0.5 s it does not exit on
        SIGTERM (its stats loop loses the cancellation; reported to the stream core).
        """
        return WorkerProcess(self.redis_url, self.keys.pipeline, "alerting-w1", self.directory,
                             MILLSTREAM_NAMESPACE=self.keys.namespace,
                             MILLSTREAM_METRICS_PORT=str(self.worker_port))

    def publish(self, count: int) -> None:
        async def go() -> None:
            redis = connect(Settings(redis_url=self.redis_url))
            await library.load(redis)
            await Publisher(redis, self.keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(count)])
            await redis.aclose()

        asyncio.run(go())


@pytest.fixture
def stack(redis_server: RedisServer, pipeline_name: str, tmp_path: Path) -> Iterator[Stack]:
    prometheus_binary = require_tool("prometheus")
    alertmanager_binary = require_tool("prometheus-alertmanager")
    keys = Keys(f"al{uuid.uuid4().hex[:8]}", pipeline_name)  # the exporter sees only this test's keys
    thresholds = scaled_thresholds()
    with contextlib.ExitStack() as cleanup:
        webhook = WebhookReceiver()
        cleanup.callback(webhook.stop)
        alertmanager = Alertmanager(alertmanager_binary, tmp_path, webhook.url)
        cleanup.callback(alertmanager.stop)
        exporter = Exporter(tmp_path, redis_server.url, keys.namespace)
        cleanup.callback(exporter.stop)
        worker_port = free_port()
        prometheus = Prometheus(prometheus_binary, tmp_path, thresholds, {
            thresholds.exporter_job: f"127.0.0.1:{exporter.port}",
            "millstream-worker": f"127.0.0.1:{worker_port}",
        }, f"127.0.0.1:{alertmanager.port}")
        cleanup.callback(prometheus.stop)
        yield Stack(redis_server.url, keys, tmp_path, worker_port, prometheus, webhook)


def stop_gracefully(worker: WorkerProcess) -> None:
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0, worker.log()


def alert_states(stack: Stack, seen: list[str]) -> list[str]:
    """Record the lag alert's state for this pipeline as Prometheus reports it now."""
    states = [a["state"] for a in stack.prometheus.alerts(LAG_ALERT, pipeline=stack.keys.pipeline)]
    for state in states:
        if not seen or seen[-1] != state:
            seen.append(state)
    return states


def test_lag_alert_goes_pending_then_firing_reaches_the_webhook_and_resolves_when_the_stage_resumes(
    stack: Stack, redis_server: RedisServer
):
    pipeline = stack.keys.pipeline
    worker = stack.start_worker()
    try:
        group = f'pipeline_stream_group:millstream_group_lag_entries:max{{pipeline="{pipeline}"}}'
        wait_for(lambda: stack.prometheus.query(group), 30, "the stage's consumer group seen by Prometheus")
        wait_for(lambda: stack.prometheus.query('up{job="millstream-worker"} == 1'), 30, "worker scraped")
        stop_gracefully(worker)

        stack.publish(20)
        started, seen, timeline = time.monotonic(), [], {}
        wait_for(lambda: "pending" in alert_states(stack, seen), 30, f"{LAG_ALERT} pending")
        timeline["pending"] = time.monotonic() - started
        wait_for(lambda: "firing" in alert_states(stack, seen), 30, f"{LAG_ALERT} firing")
        timeline["firing"] = time.monotonic() - started
        assert seen == ["pending", "firing"], seen
        assert timeline["firing"] >= 3 + 3 - 1, f"{timeline}: lag over 3s for 3s, minus sampling"

        delivered = wait_for(lambda: stack.webhook.alerts("firing", LAG_ALERT, pipeline=pipeline), 20,
                             "firing notification at the webhook")[0]
        timeline["delivered"] = time.monotonic() - started
        assert delivered["labels"]["group"] == "copy" and delivered["labels"]["stream"] == "in"
        assert delivered["annotations"]["runbook_url"].endswith("OPERATIONS.md#millstreamlagsecondshigh")

        worker = stack.start_worker()
        wait_for(lambda: not alert_states(stack, seen), 40, f"{LAG_ALERT} resolved in Prometheus")
        timeline["resolved"] = time.monotonic() - started
        wait_for(lambda: stack.webhook.alerts("resolved", LAG_ALERT, pipeline=pipeline), 20,
                 "resolved notification at the webhook")
        timeline["resolved delivered"] = time.monotonic() - started
        print("seconds after publishing:", {k: round(v, 1) for k, v in timeline.items()})
        client = sync_redis.Redis.from_url(redis_server.url)
        try:
            assert client.xlen(stack.keys.stream("out")) == 20
        finally:
            client.close()
    finally:
        worker.ensure_stopped()
