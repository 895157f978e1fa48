"""A keyed stage: 3 workers, 1,000 keys; a worker killed (kill -9) or stopped (SIGSTOP) mid-run.

Per key, the outputs must be exactly the key's tasks, once each, in publish order:
the out stream's order is the order their commits landed in.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.chaos.conftest import outputs
from tests.support.redis_server import RedisServer
from tests.support.workers import wait_until

KEYS, PER_KEY = 1000, 8
KEYED = dict(MSTEST_KEY="k", MSTEST_PARTITIONS="16", MSTEST_DELAY="0.002", MSTEST_CONCURRENCY="32",
             MSTEST_MAX_IN_FLIGHT="200")


def publish_keyed(server: RedisServer, keys: Keys) -> int:
    """PER_KEY rounds over KEYS keys: task n has key n % KEYS; returns how many."""
    count = KEYS * PER_KEY

    async def go() -> None:
        redis = connect(Settings(redis_url=server.url))
        await library.load(redis)
        publisher = Publisher(redis, keys)
        for start in range(0, count, 1000):
            await publisher.publish_many("in", [({"n": n, "k": f"key-{n % KEYS}"}, f"r{n}")
                                                for n in range(start, min(count, start + 1000))])
        await redis.aclose()

    asyncio.run(go())
    return count


def in_order_once(client, keys: Keys, count: int) -> list[dict[str, object]]:
    out = outputs(client, keys)
    per_key: dict[object, list[int]] = defaultdict(list)
    for o in out:
        per_key[o["k"]].append(int(o["n"]))  # type: ignore[call-overload]
    assert len(per_key) == KEYS
    broken = {k: ns for k, ns in per_key.items() if ns != sorted(set(ns)) or len(ns) != PER_KEY}
    assert not broken, f"{len(broken)} keys out of order, doubled or short, e.g. {next(iter(broken.items()))}"
    assert len(out) == count
    return out


def lanes_of(client, keys: Keys, consumer: str) -> int:
    """How many of the stage's partitions ``consumer`` holds the lease of."""
    return sum(client.get(keys.lease(f"in.p{n}", f"copy.p{n}")) == consumer.encode() for n in range(16))


def test_kill_9_of_one_of_three_workers_keeps_every_keys_order(start_worker, client, redis_server, keys):
    count = publish_keyed(redis_server, keys)
    workers = {name: start_worker(name, **KEYED) for name in "abc"}
    wait_until(lambda: all(lanes_of(client, keys, n) > 0 for n in "abc"), timeout=30, every=0.05)
    wait_until(lambda: client.xlen(keys.stream("out")) >= count // 4, timeout=60, every=0.02)
    held = lanes_of(client, keys, "a")
    workers["a"].kill()
    started = time.monotonic()
    wait_until(lambda: lanes_of(client, keys, "b") + lanes_of(client, keys, "c") == 16, timeout=30, every=0.05)
    moved = time.monotonic() - started
    wait_until(lambda: client.xlen(keys.stream("out")) >= count, timeout=120)
    time.sleep(0.5)  # any late (wrong) write lands before counting
    out = in_order_once(client, keys, count)
    assert held > 0 and {o["by"] for o in out} == {"a", "b", "c"}
    assert moved < 1.0 + 2.0, f"a's {held} partitions moved after {moved:.1f}s; the heartbeat TTL is 1s"


def test_a_stopped_worker_loses_its_keys_and_its_late_outcomes_are_fenced(start_worker, client, redis_server, keys):
    count = publish_keyed(redis_server, keys)
    slow = dict(KEYED, MSTEST_DELAY="0.02")
    workers = {name: start_worker(name, **slow) for name in "abc"}
    wait_until(lambda: all(lanes_of(client, keys, n) > 0 for n in "abc"), timeout=30, every=0.05)
    wait_until(lambda: client.xlen(keys.stream("out")) >= count // 10, timeout=60, every=0.02)
    workers["a"].signal(signal.SIGSTOP)
    wait_until(lambda: lanes_of(client, keys, "b") + lanes_of(client, keys, "c") == 16, timeout=30, every=0.05)
    time.sleep(1.0)
    workers["a"].signal(signal.SIGCONT)
    wait_until(lambda: client.xlen(keys.stream("out")) >= count, timeout=120)
    time.sleep(1.0)  # a wakes, finds its leases gone; its handlers' outcomes must be fenced off
    in_order_once(client, keys, count)
    wait_until(lambda: lanes_of(client, keys, "a") > 0, timeout=30, every=0.05)  # a is given lanes back
