"""A pause reaches every worker process of the stage, and outlives their restart.

Two ``python -m streams worker`` processes run the copier stage ("copy": in → out)
on a real redis-server, with a claim interval of 0.2 s. "Read nothing" is
checked after each worker renewed its heartbeat twice more (a heartbeat every
third of a second): several rounds of upkeep, pause checks among them.
"""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.error
from collections.abc import Callable

import orjson
import redis as sync_redis

from streams.redis import control, library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess, wait_until

Start = Callable[[str], WorkerProcess]


def act(redis_server: RedisServer, keys: Keys, what: str, start: int = 0, count: int = 0) -> None:
    """Publish ``count`` payloads {"n": start...}, or pause or resume stage "copy", as an operator does."""
    async def go() -> None:
        redis = connect(Settings(redis_url=redis_server.url))
        try:
            await library.load(redis)
            if what == "publish":
                items = [({"n": i}, f"r{i}") for i in range(start, start + count)]
                await Publisher(redis, keys).publish_many("in", items)
            else:
                change = control.pause if what == "pause" else control.resume
                await change(redis, keys, "copy", "oncall-jo", 1000)
        finally:
            await redis.aclose()

    asyncio.run(go())


def paused_gauge(worker: WorkerProcess) -> float | None:
    try:
        return worker.metric("millstream_stage_paused")
    except (urllib.error.URLError, ConnectionError):  # its /metrics is not up yet
        return None


def outputs(client: sync_redis.Redis, keys: Keys) -> list[int]:
    return sorted(orjson.loads(f[b"d"])["n"] for _, f in client.xrange(keys.stream("out")))


def two_more_heartbeats(client: sync_redis.Redis, keys: Keys, workers: list[WorkerProcess]) -> None:
    def renewed(before: dict[str, bytes | None]) -> Callable[[], bool]:
        return lambda: all(client.get(keys.heartbeat("copy", c)) not in (None, b) for c, b in before.items())

    for _ in range(2):
        wait_until(renewed({w.consumer: client.get(keys.heartbeat("copy", w.consumer)) for w in workers}),
                   timeout=10)


def all_paused(workers: list[WorkerProcess], value: float) -> Callable[[], bool]:
    return lambda: all(paused_gauge(w) == value for w in workers)


def stop(workers: list[WorkerProcess]) -> None:
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        assert w.wait(timeout=15) == 0


def test_a_pause_is_honoured_by_every_worker_within_2s_and_outlives_their_restart(
    start_worker: Start, client: sync_redis.Redis, redis_server: RedisServer, keys: Keys
):
    workers = [start_worker("a", MSTEST_CONCURRENCY="4"), start_worker("b", MSTEST_CONCURRENCY="4")]
    act(redis_server, keys, "publish", count=20)
    wait_until(lambda: len(outputs(client, keys)) == 20, timeout=60)
    wait_until(all_paused(workers, 0.0), timeout=30)

    paused_at = time.monotonic()
    act(redis_server, keys, "pause")
    wait_until(all_paused(workers, 1.0), timeout=10)
    took = time.monotonic() - paused_at
    act(redis_server, keys, "publish", start=20, count=30)
    two_more_heartbeats(client, keys, workers)

    assert took < 2.0, f"both workers saw the pause after {took:.2f}s"
    assert outputs(client, keys) == list(range(20))
    assert client.xpending(keys.stream("in"), "copy")["pending"] == 0
    stop(workers)
    assert all("stage copy: paused by an operator" in w.log() for w in workers)

    workers = [start_worker("a", MSTEST_CONCURRENCY="4"), start_worker("b", MSTEST_CONCURRENCY="4")]
    wait_until(all_paused(workers, 1.0), timeout=30)
    two_more_heartbeats(client, keys, workers)
    assert outputs(client, keys) == list(range(20)), "restarted workers of a paused stage read nothing"

    act(redis_server, keys, "resume")
    wait_until(lambda: len(outputs(client, keys)) >= 50, timeout=30)
    assert outputs(client, keys) == list(range(50))
    wait_until(all_paused(workers, 0.0), timeout=5)  # one may have copied all before the other looked
    events = [(e[b"control"], e[b"by"]) for _, e in client.xrange(keys.events) if b"control" in e]
    assert events == [(b"paused", b"oncall-jo"), (b"resumed", b"oncall-jo")]
