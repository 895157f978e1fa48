"""A pipeline reached through a unix:// URL, as a worker beside its Redis would."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from streams.message import Message, Outgoing
from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from streams.stage import Stage
from tests.conftest import require_tool
from tests.support.pipelines import payloads, running, wait_for, xlen_at_least
from tests.support.redis_server import RedisServer


async def increment(message: Message) -> list[Outgoing]:
    return [Outgoing({"n": message.payload["n"] + 1})]


@pytest.fixture(scope="module")
def socket_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-unix"), binary=require_tool("redis-server"),
                         unix_socket=True)
    yield server
    server.stop()


async def test_a_stage_reads_and_commits_over_a_unix_socket(
    socket_server: RedisServer, keys: Keys, settings: Settings
):
    assert socket_server.socket_url is not None
    over_socket = dataclasses.replace(settings, redis_url=socket_server.socket_url)
    client: Redis = connect(over_socket)
    try:
        await library.load(client)
        await Publisher(client, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(20)])
        async with running(client, keys, Stage("inc", "in", increment, sinks=["out"]), over_socket):
            await wait_for(lambda: xlen_at_least(client, keys.stream("out"), 20))
        assert sorted(p["n"] for p in await payloads(client, keys.stream("out"))) == list(range(1, 21))
        assert (await client.xpending(keys.stream("in"), "inc"))["pending"] == 0
    finally:
        await client.aclose()
