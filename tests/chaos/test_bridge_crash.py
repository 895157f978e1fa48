"""kill -9 of the legacy bridge mid-flow: every pushed task is in the stream once, in order."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import redis as sync_redis

from streams.redis.keys import Keys
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess, wait_until


def test_bridge_killed_mid_flow_neither_loses_nor_repeats_a_task(redis_server: RedisServer, pipeline_name: str,
                                                                  keys: Keys, tmp_path: Path):
    source = f"test:{uuid.uuid4().hex[:8]}:tasks"
    client = sync_redis.Redis.from_url(redis_server.url)
    count = 20_000
    for start in range(0, count, 1000):
        client.rpush(source, *[orjson.dumps({"request_id": f"r{i}"}) for i in range(start, start + 1000)])
    options = dict(factory="tests.support.factories:legacy_bridge", MSTEST_LIST=source)
    first = WorkerProcess(redis_server.url, pipeline_name, "bridge-1", tmp_path, **options)
    wait_until(lambda: client.xlen(keys.stream("tasks")) >= 3000, timeout=60)
    first.kill()
    assert client.llen(source) > 0, "the bridge should have been killed mid-flow"
    second = WorkerProcess(redis_server.url, pipeline_name, "bridge-2", tmp_path, **options)
    try:
        wait_until(lambda: client.llen(source) == 0, timeout=60)
    finally:
        second.ensure_stopped()
    rids = [f[b"rid"].decode() for _, f in client.xrange(keys.stream("tasks"))]
    assert rids == [f"r{i}" for i in range(count)]
    client.close()
