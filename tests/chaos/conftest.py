from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
import redis as sync_redis

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.support.redis_server import RedisServer


@pytest.fixture
def publish(redis_server: RedisServer, keys: Keys) -> Callable[[int], None]:
    """Publish payloads {"n": 0..count-1} to stream "in", in batches."""

    def run(count: int) -> None:
        async def go() -> None:
            redis = connect(Settings(redis_url=redis_server.url))
            await library.load(redis)
            publisher = Publisher(redis, keys)
            for start in range(0, count, 1000):
                items = [({"n": i}, f"r{i}") for i in range(start, min(count, start + 1000))]
                await publisher.publish_many("in", items)
            await redis.aclose()

        asyncio.run(go())

    return run


def outputs(client: sync_redis.Redis, keys: Keys) -> list[dict[str, object]]:
    return [orjson.loads(f[b"d"]) for _, f in client.xrange(keys.stream("out"))]
