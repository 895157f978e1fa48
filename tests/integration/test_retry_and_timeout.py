"""Retry delays follow the policy; a handler past its timeout fails that attempt."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections import defaultdict

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.policy import RetryPolicy
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from streams.stage import Stage
from tests.support.pipelines import payloads, running, wait_for, xlen_at_least

# Retries become due in the delayed set and are moved back by a job running every
# claim_interval; reading them back adds a little more.
SLACK = 0.15


async def test_measured_retry_delays_stay_within_the_policy_bounds(redis: Redis, keys: Keys, settings: Settings):
    policy = RetryPolicy(base=0.4, factor=2.0, cap=0.6)
    seen: dict[str, list[float]] = defaultdict(list)

    async def fails_twice(message: Message) -> list[Outgoing]:
        seen[message.request_id].append(time.monotonic())
        if message.attempt < 3:
            raise ConnectionError("flaky")
        return [Outgoing(message.payload)]

    count = 60
    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(count)])
    stage = Stage("flaky", "in", fails_twice, sinks=["out"], concurrency=count, max_attempts=5, retry=policy)
    fast = dataclasses.replace(settings, claim_interval=0.05)
    async with running(redis, keys, stage, fast):
        await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), count), timeout=20)
    first = [t[1] - t[0] for t in seen.values()]
    second = [t[2] - t[1] for t in seen.values()]
    assert max(first) <= policy.ceiling(1) + SLACK and max(second) <= policy.ceiling(2) + SLACK
    assert policy.ceiling(2) == 0.6, "the cap bounds the second delay (0.8 uncapped)"
    # full jitter: uniform over [0, ceiling], so the mean sits near half the ceiling
    assert 0.1 <= statistics.mean(first) <= 0.2 + SLACK
    assert 0.15 <= statistics.mean(second) <= 0.3 + SLACK
    assert min(first) < 0.15 and max(second) > 0.4, "delays spread over the whole range"


async def test_handler_exceeding_its_timeout_fails_that_attempt(redis: Redis, keys: Keys, settings: Settings):
    async def slow_first(message: Message) -> list[Outgoing]:
        if message.attempt == 1:
            await asyncio.sleep(5)
        return [Outgoing({"attempt": message.attempt})]

    metrics = Metrics(CollectorRegistry())
    await Publisher(redis, keys).publish("in", {"n": 1})
    stage = Stage("slow", "in", slow_first, sinks=["out"], timeout=0.2, retry=RetryPolicy(base=0.01))
    started = time.monotonic()
    async with running(redis, keys, stage, settings, metrics):
        await wait_for(lambda: redis.xlen(keys.stream("out")))
    assert time.monotonic() - started < 3
    assert await payloads(redis, keys.stream("out")) == [{"attempt": 2}]
    assert metrics.failed.labels(keys.pipeline, "slow")._value.get() == 1
