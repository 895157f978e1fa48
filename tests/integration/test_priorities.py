"""A stage read by priority, in a worker process on Redis: critical tasks overtake a normal backlog."""

from __future__ import annotations

import asyncio

import orjson

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.support.redis_server import RedisServer
from tests.support.workers import wait_until


def publish(server: RedisServer, keys: Keys, items: list[tuple[dict[str, object], str, str]]) -> None:
    async def go() -> None:
        redis = connect(Settings(redis_url=server.url))
        await library.load(redis)
        await Publisher(redis, keys, prioritized=frozenset({"in"})).publish_many("in", items)
        await redis.aclose()

    asyncio.run(go())


def test_critical_and_high_tasks_published_behind_a_backlog_are_handled_next_in_level_order(
    start_worker, client, redis_server, keys
):
    backlog = 600
    publish(redis_server, keys, [({"n": n, "level": "normal"}, f"n{n}", "normal") for n in range(backlog)])
    start_worker("a", MSTEST_PRIORITIES="1", MSTEST_DELAY="0.01", MSTEST_CONCURRENCY="1")
    wait_until(lambda: client.xlen(keys.stream("out")) >= 20, timeout=30)
    urgent = [({"n": n, "level": level}, f"{level}{n}", level) for n in range(20) for level in ("high", "critical")]
    publish(redis_server, keys, urgent)
    wait_until(lambda: client.xlen(keys.stream("out")) >= backlog + len(urgent), timeout=60)
    out = [orjson.loads(f[b"d"]) for _, f in client.xrange(keys.stream("out"))]
    levels = [o["level"] for o in out]
    first, last = levels.index("critical"), len(levels) - 1 - levels[::-1].index("high")
    assert levels[first:first + 20] == ["critical"] * 20, "the criticals run one after another"
    assert levels[first + 20:first + 40] == ["high"] * 20, "then the highs"
    assert last == first + 39
    assert first < 20 + 120, f"critical tasks waited behind {first - 20} normal ones"
    assert [o["n"] for o in out if o["level"] == "normal"] == list(range(backlog)), "normal order kept"
