"""A rate limit shared by every worker, kept in Redis: GCRA in one Lua script.

GCRA (the generic cell rate algorithm) keeps one number per limit, the
theoretical arrival time (TAT) of the next request. With emission interval
``T = 1 / per_second`` and tolerance ``(burst - 1) * T``, a request at ``now``
may go at ``max(now, TAT - tolerance)``, and TAT moves on by ``T``.

``RateLimiter.acquire()`` *reserves* that slot in one round trip and then sleeps
until it, so waiting workers never poll Redis and are served in the order they
asked. A slot further away than ``max_wait`` is not reserved: ``acquire``
raises ``RateLimited`` (retryable), so a backlog turns into retries with
backoff instead of ever longer sleeps inside handlers.

The script reads Redis's clock (``TIME``), so workers on hosts whose clocks
disagree still share one limit. The caller passes the key, so it can carry the
pipeline's hash tag (``ms:{imgtr}:ratelimit:translate``); the key is a string
of microseconds that expires once the limit is idle. A reserved slot that the
caller then abandons (cancelled) stays used: the limit errs on the safe side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from streams.errors import RetryableError, TransportError

# KEYS[1] = the limit's key; ARGV = interval (us), burst, max_wait (us).
# Returns {granted (0/1), wait (us)}. Numbers are written with %.0f because
# Lua's default number format (%.14g) would round microseconds since the epoch.
GCRA = """
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local max_wait = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = math.max(0, tat - tolerance - now)
if wait > max_wait then return {0, string.format('%.0f', wait)} end
local next_tat = tat + interval
local ttl_ms = math.ceil((next_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', ttl_ms)
return {1, string.format('%.0f', wait)}
"""

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` requests a second on average, at most ``burst`` at once."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_second > 0 and burst >= 1, got {self}")

    @property
    def interval_us(self) -> int:
        return max(1, round(1_000_000 / self.per_second))


@dataclass(frozen=True, slots=True)
class Reservation:
    """``granted``: a slot is held, ``wait`` seconds from now; else the nearest is ``wait`` away."""

    granted: bool
    wait: float


class RateLimited(RetryableError):
    """The next free slot of ``key`` is ``retry_after`` seconds away, past the caller's patience."""

    def __init__(self, key: str, retry_after: float) -> None:
        super().__init__(f"rate limit {key}: next slot in {retry_after:.2f} s, past the wait limit")
        self.key = key
        self.retry_after = retry_after


class Limiter(Protocol):
    async def acquire(self) -> float:
        """Wait for permission to make one request; return the seconds waited."""
        ...


class Unlimited:
    """A limiter that never waits (a rate of 0 means no limit)."""

    async def acquire(self) -> float:
        return 0.0


class RateLimiter:
    """One limit (``key``) shared by every process that uses the same key and rate."""

    def __init__(self, redis: Redis, key: str, rate: Rate, max_wait: float = 30.0,
                 sleep: Sleep = asyncio.sleep) -> None:
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self.key, self.rate, self.max_wait = key, rate, max_wait
        self._script = redis.register_script(GCRA)
        self._sleep = sleep

    async def reserve(self, max_wait: float | None = None) -> Reservation:
        """Reserve the next slot if it is at most ``max_wait`` seconds away (one round trip)."""
        patience = self.max_wait if max_wait is None else max_wait
        args = [self.rate.interval_us, self.rate.burst, round(patience * 1_000_000)]
        try:
            granted, wait_us = await self._script(keys=[self.key], args=args)
        except RedisError as error:
            raise TransportError(f"rate limit {self.key}: {error}") from error
        return Reservation(granted=int(granted) == 1, wait=int(wait_us) / 1_000_000)

    async def acquire(self) -> float:
        """Reserve a slot and sleep until it; ``RateLimited`` if it is past ``max_wait``."""
        reservation = await self.reserve()
        if not reservation.granted:
            raise RateLimited(self.key, reservation.wait)
        if reservation.wait > 0:
            await self._sleep(reservation.wait)
        return reservation.wait
