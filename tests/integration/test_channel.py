"""resp.Channel against a redis-server of its own that the test freezes and thaws."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.redis import resp
from streams.redis.connection import connect
from streams.settings import Settings
from tests.support.redis_server import RedisServer

PING = resp.command(1, [resp.bulk(b"PING")])


@pytest.fixture
def frozen_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    try:
        yield server
    finally:
        server.process.send_signal(signal.SIGCONT)
        server.stop()


async def test_a_call_to_a_frozen_redis_times_out_and_the_next_one_reconnects(frozen_redis: RedisServer):
    client = connect(Settings(redis_url=frozen_redis.url, metrics_port=0))
    channel = resp.Channel(client)
    assert await channel.call(PING, 5) == b"PONG"
    frozen_redis.process.send_signal(signal.SIGSTOP)
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        await channel.call(PING, 0.5)

    assert time.monotonic() - started < 2
    frozen_redis.process.send_signal(signal.SIGCONT)
    assert await channel.call(PING, 5) == b"PONG", "a new connection after the dropped one"
    await channel.close()
    await client.aclose()
