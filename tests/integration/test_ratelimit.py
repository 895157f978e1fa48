"""The Redis rate limit (GCRA): slots are spaced by the interval and shared by every client of a key."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from streams.errors import RetryableError
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.ratelimit import Rate, RateLimited, RateLimiter
from streams.settings import Settings

# Two Redis round trips apart, the clock has moved on by a little.
SLACK = 0.02


@pytest.fixture
def key(keys: Keys) -> str:
    return f"{keys.prefix}:ratelimit:translate"


async def test_the_first_request_goes_at_once_and_the_next_waits_one_interval(redis: Redis, key: str):
    limiter = RateLimiter(redis, key, Rate(per_second=10))
    first, second = await limiter.reserve(), await limiter.reserve()
    assert first.granted and first.wait == 0
    assert second.granted and 0.1 - SLACK <= second.wait <= 0.1


async def test_a_burst_lets_that_many_requests_go_at_once(redis: Redis, key: str):
    limiter = RateLimiter(redis, key, Rate(per_second=10, burst=3))
    waits = [(await limiter.reserve()).wait for _ in range(4)]
    assert waits[:3] == [0, 0, 0]
    assert 0.1 - SLACK <= waits[3] <= 0.1


async def test_limiters_on_one_key_share_the_limit_across_clients(redis: Redis, key: str, settings: Settings):
    other = connect(settings)
    try:
        mine, theirs = RateLimiter(redis, key, Rate(10)), RateLimiter(other, key, Rate(10))
        assert (await mine.reserve()).wait == 0
        assert (await theirs.reserve()).wait > 0.1 - SLACK
        assert (await mine.reserve()).wait > 0.2 - 2 * SLACK
    finally:
        await other.aclose()


async def test_different_keys_are_limited_apart(redis: Redis, keys: Keys):
    one = RateLimiter(redis, f"{keys.prefix}:ratelimit:a", Rate(1))
    two = RateLimiter(redis, f"{keys.prefix}:ratelimit:b", Rate(1))
    assert [(await one.reserve()).wait, (await two.reserve()).wait] == [0, 0]


async def test_a_slot_past_the_wait_limit_is_refused_and_not_taken(redis: Redis, key: str):
    limiter = RateLimiter(redis, key, Rate(per_second=1))
    await limiter.reserve()
    refused = await limiter.reserve(max_wait=0.5)
    assert not refused.granted and 1 - SLACK <= refused.wait <= 1
    later = await limiter.reserve(max_wait=2)
    assert later.granted and later.wait <= 1, "the refused request did not use up a slot"


async def test_acquire_raises_a_retryable_error_when_the_slot_is_too_far(redis: Redis, key: str):
    limiter = RateLimiter(redis, key, Rate(per_second=1), max_wait=0.1)
    await limiter.acquire()
    with pytest.raises(RateLimited, match=r"next slot in 1\.00 s") as raised:
        await limiter.acquire()
    assert isinstance(raised.value, RetryableError) and raised.value.key == key


async def test_acquire_sleeps_until_its_slot(redis: Redis, key: str):
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(redis, key, Rate(per_second=20), sleep=record)
    waited = [await limiter.acquire() for _ in range(3)]
    assert waited[0] == 0 and slept == waited[1:]
    assert slept[0] >= 0.05 - SLACK and 0.1 - 2 * SLACK <= slept[1] <= 0.1


async def test_the_key_expires_once_the_limit_is_idle(redis: Redis, key: str):
    await RateLimiter(redis, key, Rate(per_second=10)).reserve()
    assert 0 < await redis.pttl(key) <= 100 + 1000


async def test_the_script_is_loaded_again_after_the_server_lost_it(redis: Redis, key: str):
    limiter = RateLimiter(redis, key, Rate(per_second=10))
    await limiter.reserve()
    await redis.script_flush()
    assert (await limiter.reserve()).granted


async def test_concurrent_workers_together_stay_within_the_rate(redis: Redis, key: str):
    limiter = RateLimiter(redis, key, Rate(per_second=50))
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def worker() -> list[float]:
        times = []
        for _ in range(5):
            await limiter.acquire()
            times.append(loop.time() - started)
        return times

    # Wake-ups can bunch on a busy machine, so only the total is a safe bound: slots are not.
    times = sorted(t for ts in await asyncio.gather(*(worker() for _ in range(4))) for t in ts)
    assert times[-1] >= (len(times) - 1) / 50 - SLACK, "20 requests at 50/s need at least 0.38 s"


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_second > 0"):
        Rate(per_second=0)
