"""A stage's rate holds across worker processes: four of them together run 600 a minute, within 5%.

Four ``python -m streams worker`` processes run stage "copy" with
``rate="600/m"`` (a slot every 100 ms, GCRA in Redis) on a backlog of 2,000
entries, more than three minutes of work. Each output carries when its
attempt began; the attempts that began in one minute, measured from a second
after every worker had run one, are counted. An unshared limit (one per
worker) would let 2,400 through; none at all, the whole backlog.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis as sync_redis

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess, wait_until

CONSUMERS = ("a", "b", "c", "d")
BACKLOG, PER_MINUTE, WINDOW = 2000, 600, 60.0


class Outputs:
    """The ``out`` stream read as it grows: (when the attempt began, consumer) per entry."""

    def __init__(self, client: sync_redis.Redis, keys: Keys) -> None:
        self.client, self.key, self.after, self.seen = client, keys.stream("out"), "-", []

    def read(self) -> list[tuple[float, str]]:
        for entry_id, fields in self.client.xrange(self.key, self.after, "+", count=1000):
            payload = orjson.loads(fields[b"d"])
            self.seen.append((payload["at"], payload["by"]))
            self.after = "(" + entry_id.decode()
        return self.seen


@pytest.fixture
def workers(redis_server: RedisServer, pipeline_name: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(redis_server.url, pipeline_name, c, tmp_path, "tests.support.throttled:throttled_copier",
                             MSTEST_RATE="600/m", MSTEST_CONCURRENCY="4") for c in CONSUMERS]
    yield started
    for worker in started:
        worker.ensure_stopped()


def publish(redis_server: RedisServer, keys: Keys, count: int) -> None:
    async def go() -> None:
        redis = connect(Settings(redis_url=redis_server.url))
        try:
            await library.load(redis)
            await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(count)])
        finally:
            await redis.aclose()

    asyncio.run(go())


def test_four_worker_processes_together_start_600_attempts_a_minute_within_5_percent(
    redis_server: RedisServer, keys: Keys, client: sync_redis.Redis, workers: list[WorkerProcess],
):
    publish(redis_server, keys, BACKLOG)
    outputs = Outputs(client, keys)
    wait_until(lambda: {by for _, by in outputs.read()} == set(CONSUMERS), timeout=60, every=0.2)
    start = max(at for at, _ in outputs.read()) + 1.0
    end = start + WINDOW
    wait_until(lambda: max(at for at, _ in outputs.read()) >= end, timeout=WINDOW + 30, every=0.5)

    window = [by for at, by in outputs.read() if start <= at < end]
    assert PER_MINUTE * 0.95 <= len(window) <= PER_MINUTE * 1.05, f"{len(window)} attempts in {WINDOW:.0f} s"
    shares = Counter(window)
    assert all(shares[c] >= len(window) / 10 for c in CONSUMERS), f"one limit, every worker served: {shares}"
    assert all(w.metric("millstream_stage_throttled_total") > 0 for w in workers)
    assert all(w.metric("millstream_stage_throttled_seconds_total") > 0 for w in workers)
    assert client.exists(keys.stage_rate("copy"))
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        assert w.wait(timeout=15) == 0
    print(f"attempts in {WINDOW:.0f} s: {len(window)} (shares {dict(shares)})")
