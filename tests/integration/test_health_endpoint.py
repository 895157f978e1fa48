"""/healthz and /readyz: live while the loop turns and Redis answers, ready once every part has joined.

In-process, with the real engine, a real redis-server and the real HTTP
endpoint; the worker process itself is tested in test_health_worker.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from streams.engine.runner import StageRunner
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.transport import RedisTransport
from streams.service.endpoint import serve_metrics
from streams.service.health import Health, tracked
from streams.settings import Settings
from streams.stage import Stage
from tests.conftest import require_tool
from tests.support.pipelines import wait_for
from tests.support.redis_server import RedisServer, free_port

TTL = 0.6


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            status, body = reply.status, reply.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    return status, orjson.loads(body) if path in ("/healthz", "/readyz") else body.decode()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async def holds() -> bool:
        return check()

    await wait_for(holds, timeout=timeout)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone: the test stops it."""
    server = RedisServer(tmp_path / "redis", binary=require_tool("redis-server"))
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def endpoint(health: Health) -> AsyncIterator[int]:
    port = free_port()
    registry = CollectorRegistry()
    Counter("probe_test", "a metric of this test", registry=registry).inc()
    serve_metrics(Settings(metrics_port=port), registry, health)
    yield port


async def test_a_part_that_ends_while_the_worker_is_not_stopping_fails_liveness():
    health = Health(TTL, Clock())

    async def ends() -> None:
        return None

    await health.track("copy", ends())
    assert not health.live().ok
    assert health.live().body["problems"] == ["copy stopped"]
    health.stopping()
    assert health.live().ok, "a part may end once the worker stops"
    assert not health.ready().ok


async def test_a_failed_part_fails_both_probes_and_its_error_propagates():
    health = Health(TTL, Clock())

    async def crashes() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await health.track("copy", crashes())
    assert health.parts == {"copy": "failed"}
    assert not health.live().ok and not health.ready().ok


async def test_liveness_fails_when_the_event_loop_stops_turning_or_redis_stays_silent():
    clock = Clock()
    health = Health(TTL, clock)
    assert health.live().ok
    clock.now += TTL + 0.1  # nothing ran the probe: a blocked loop, or a Redis that never answered
    problems = health.live().body["problems"]
    assert any("Redis has not answered" in p for p in problems)
    assert any("event loop" in p for p in problems)


async def test_readiness_waits_for_the_runner_to_join_and_ends_with_the_stop(redis_server: RedisServer,
                                                                           pipeline_name: str):
    settings = Settings(redis_url=redis_server.url, consumer="c-health", metrics_port=0,
                        heartbeat_ttl=TTL, claim_interval=0.2, shutdown_grace=5)
    redis = connect(settings)
    await library.load(redis)
    keys = Keys("mst", pipeline_name)
    release = asyncio.Event()

    async def slow(message: Message) -> list[Outgoing]:
        await release.wait()
        return [Outgoing(dict(message.payload))]

    runner = StageRunner(RedisTransport(redis, keys, settings), Stage("copy", "in", slow, sinks=["out"]),
                         settings, Metrics(CollectorRegistry()))
    health, stop = Health(TTL), asyncio.Event()
    async with endpoint(health) as port:
        assert get(port, "/readyz")[0] == 503  # nothing runs yet
        assert "probe_test_total 1.0" in get(port, "/metrics")[1]
        probe = asyncio.create_task(health.probe(redis, stop))
        run = asyncio.create_task(tracked(health, runner))
        await until(lambda: health.ready().ok)
        status, body = await asyncio.to_thread(get, port, "/readyz")
        assert (status, body["parts"]) == (200, {"copy": "running"})
        await Publisher(redis, keys).publish("in", {"n": 1}, "r1")
        await until(lambda: runner.inbox.held == 1)
        health.stopping()
        runner.stop()
        status, body = await asyncio.to_thread(get, port, "/readyz")
        assert (status, body["problems"]) == (503, ["stopping"])
        assert (await asyncio.to_thread(get, port, "/healthz"))[0] == 200, "draining is alive"
        release.set()
        await run
        assert health.parts == {"copy": "stopped"} and health.live().ok
        stop.set()
        await probe
    await redis.aclose()


async def test_liveness_fails_within_the_heartbeat_ttl_once_redis_stops_answering(own_redis: RedisServer):
    redis = connect(Settings(redis_url=own_redis.url), socket_timeout=TTL, socket_connect_timeout=TTL)
    health, stop = Health(TTL), asyncio.Event()
    async with endpoint(health) as port:
        probe = asyncio.create_task(health.probe(redis, stop))
        await asyncio.sleep(TTL * 2)  # the property is about time: answered PINGs keep it live past the TTL
        assert (await asyncio.to_thread(get, port, "/healthz"))[0] == 200
        own_redis.stop()
        await until(lambda: not health.live().ok, timeout=TTL * 4)
        status, body = await asyncio.to_thread(get, port, "/healthz")
        assert status == 503
        assert "Redis has not answered" in body["problems"][0]
        assert "Error" in body["problems"][0], "the reason is in the answer"
        stop.set()
        await probe
    await redis.aclose()
