"""A redis-server restart (append-only file on) mid-run: workers reconnect, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import redis as sync_redis

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import EmbeddedRedis
from streams.settings import Settings
from tests.chaos.conftest import outputs
from tests.conftest import require_tool
from tests.support.workers import WorkerProcess, wait_until


def test_workers_ride_out_a_redis_restart(tmp_path: Path):
    require_tool("redis-server")
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    pipeline = f"t{uuid.uuid4().hex[:10]}"
    keys = Keys("mst", pipeline)
    count = 3000
    workers: list[WorkerProcess] = []
    try:
        asyncio.run(_publish(server.url, keys, count))
        workers = [WorkerProcess(server.url, pipeline, name, tmp_path, MSTEST_DELAY="0.01") for name in "ab"]
        client = sync_redis.Redis.from_url(server.url)
        wait_until(lambda: client.xlen(keys.stream("out")) >= 500, timeout=60)
        client.close()
        server.stop()
        server = EmbeddedRedis(tmp_path / "redis", appendonly=True, port=server.port)
        client = sync_redis.Redis.from_url(server.url)
        wait_until(lambda: client.xlen(keys.stream("out")) >= count, timeout=90)
        seen = sorted(o["n"] for o in outputs(client, keys))
        assert seen == list(range(count)), f"{len(seen)} outputs, {len(set(seen))} distinct"
        client.close()
        assert all(w.process.poll() is None for w in workers), "workers must survive the restart"
        assert any("retrying" in w.log() for w in workers), "the workers should have seen the outage"
    finally:
        for w in workers:
            w.ensure_stopped()
        server.stop()


async def _publish(url: str, keys: Keys, count: int) -> None:
    redis = connect(Settings(redis_url=url))
    await library.load(redis)
    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(count)])
    await redis.aclose()
