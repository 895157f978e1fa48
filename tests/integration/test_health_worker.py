"""A worker process answers /healthz and /readyz on its metrics port, and stops being ready on SIGTERM.

These are the probes of deploy/kubernetes: the startup and readiness probes
read /readyz, the liveness probe /healthz.
"""

from __future__ import annotations

import asyncio
import signal
import urllib.error
import urllib.request
from typing import Any

import orjson

from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess, wait_until


def probe(worker: WorkerProcess, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}{path}", timeout=5) as reply:
            return reply.status, orjson.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())
    except OSError:
        return 0, {}  # not listening yet


async def publish(url: str, pipeline: str) -> None:
    redis = connect(Settings(redis_url=url))
    await Publisher(redis, Keys("mst", pipeline)).publish("in", {"n": 1}, "r1")
    await redis.aclose()


def test_worker_is_ready_once_joined_and_not_ready_while_it_drains(start_worker: Any, redis_server: RedisServer,
                                                                    pipeline_name: str):
    worker = start_worker("c-probe", MSTEST_DELAY="1.5", MSTEST_CONCURRENCY="1")
    wait_until(lambda: probe(worker, "/readyz")[0] == 200, timeout=20)
    _, body = probe(worker, "/readyz")
    assert body["parts"] == {"copy": "running"} and body["problems"] == []
    assert probe(worker, "/healthz")[0] == 200
    asyncio.run(publish(redis_server.url, pipeline_name))
    wait_until(lambda: worker.metric("millstream_stage_in_flight") >= 1, timeout=10)
    worker.signal(signal.SIGTERM)
    wait_until(lambda: probe(worker, "/readyz")[0] == 503, timeout=5)
    _, body = probe(worker, "/readyz")
    assert "stopping" in body["problems"]
    assert probe(worker, "/healthz")[0] == 200, "a draining worker is alive: no kill before the grace period"
    assert worker.wait(20) == 0
