"""A stage read by priority: a worker killed with kill -9 mid-run loses and doubles nothing, at any level."""

from __future__ import annotations

import asyncio
from collections import Counter

from streams.priority import LEVELS
from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.chaos.conftest import outputs
from tests.chaos.test_worker_crashes import _processed
from tests.support.redis_server import RedisServer
from tests.support.workers import wait_until

PRIORITIES = dict(MSTEST_PRIORITIES="1", MSTEST_DELAY="0.001", MSTEST_CONCURRENCY="16")


def publish_mixed(server: RedisServer, keys: Keys, count: int) -> None:
    """Payloads {"n": n} on "in", task n at level n % 4 (critical, high, normal, low), in one batch per 1000."""
    async def go() -> None:
        redis = connect(Settings(redis_url=server.url))
        await library.load(redis)
        publisher = Publisher(redis, keys, prioritized=frozenset({"in"}))
        for start in range(0, count, 1000):
            await publisher.publish_many("in", [({"n": n}, f"r{n}", LEVELS[n % 4].label)
                                                for n in range(start, min(count, start + 1000))])
        await redis.aclose()

    asyncio.run(go())


def pending_in_lanes(client, keys: Keys, consumer: str) -> int:
    """How many entries ``consumer`` holds over the lanes other than normal."""
    held = 0
    for stream, group in [("in.critical", "copy.critical"), ("in.high", "copy.high"), ("in.low", "copy.low")]:
        try:
            info = client.xpending(keys.stream(stream), group)
        except Exception:  # noqa: BLE001 - the group is not made yet
            continue
        held += sum(c["pending"] for c in info["consumers"] if c["name"].decode() == consumer)
    return held


def test_kill_9_of_one_of_two_workers_with_mixed_priorities_loses_and_doubles_nothing(
    start_worker, client, redis_server, keys
):
    count = 4000
    publish_mixed(redis_server, keys, count)
    assert [client.xlen(keys.stream(s)) for s in ("in.critical", "in.high", "in", "in.low")] == [1000] * 4
    a = start_worker("a", **PRIORITIES)
    b = start_worker("b", **PRIORITIES)
    wait_until(lambda: _processed(a) >= 200 and pending_in_lanes(client, keys, "a") > 0, timeout=60, every=0.01)
    a.kill()
    wait_until(lambda: client.xlen(keys.stream("out")) >= count, timeout=120)
    out = outputs(client, keys)
    seen = Counter(o["n"] for o in out)
    assert sorted(seen) == list(range(count)), f"missing: {sorted(set(range(count)) - set(seen))[:10]}"
    assert max(seen.values()) == 1, f"duplicated: {[n for n, c in seen.items() if c > 1][:10]}"
    assert {o["by"] for o in out} == {"a", "b"}
    assert b.metric("millstream_stage_claimed_total") > 0, "b should have claimed a's entries"
    first_half = [o["n"] % 4 for o in out[:count // 2]]
    assert first_half.count(0) > first_half.count(3), "critical tasks go before low ones"
