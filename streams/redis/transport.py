"""The Redis transport: streams.transport's contract on consumer groups and the millstream functions.

``RedisTransport`` is one pipeline's, in one process; ``for_stage`` gives a
stage runner its part, made of the group consumer (consumer.py), the committer
(commit.py) and the upkeep functions (maintenance.py, retention.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Container, Mapping, Sequence

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from streams.delivery import Delivery
from streams.rates import Admission, Limiter
from streams.redis import control, retention
from streams.redis.commit import Committer
from streams.redis.consumer import GroupConsumer
from streams.redis.deadletters import DeadLetters
from streams.redis.keys import Keys
from streams.redis.maintenance import promote_due, trim_acknowledged, trim_unread
from streams.redis.ratelimit import Rate, RateLimiter
from streams.settings import Settings
from streams.stage import Stage
from streams.transition import Transition, Verdict
from streams.transport import Cancel

TRANSIENT: tuple[type[BaseException], ...] = (RedisError, OSError)  # Redis restarting, loading, unreachable


class RedisTransport:
    """Pipeline ``keys.pipeline`` on ``redis``, with the retention of ``settings``."""

    def __init__(self, redis: Redis, keys: Keys, settings: Settings) -> None:
        self.redis, self.keys, self.settings = redis, keys, settings

    @property
    def pipeline(self) -> str:
        return self.keys.pipeline

    def for_stage(self, stage: Stage, consumer: str) -> RedisStageTransport:
        return RedisStageTransport(self.redis, self.keys, stage, self.settings, consumer)

    def limiter(self, stage: Stage) -> Limiter:
        """``stage.rate`` as GCRA in Redis (streams.redis.ratelimit), on the stage's key."""
        rate = stage.rate_limit
        if rate is None:
            raise ValueError(f"stage {stage.name!r} has no rate")
        shared = RateLimiter(self.redis, self.keys.stage_rate(stage.name), Rate(rate.per_second, rate.burst),
                             max_wait=stage.rate_horizon)
        return Admission(shared, asyncio.sleep, stage.rate_horizon)


class RedisStageTransport:
    transient = TRANSIENT

    def __init__(self, redis: Redis, keys: Keys, stage: Stage, settings: Settings, consumer: str) -> None:
        self.redis, self.keys, self.stage, self.settings = redis, keys, stage, settings
        self.group = GroupConsumer(redis, keys, stage.source, stage.group, consumer)
        self.committer = Committer(
            redis, keys, keys.stream(stage.source), stage.group, consumer, stage.name,
            int(settings.status_ttl * 1000), settings.events_maxlen, stage.max_in_flight,
        )
        self.dead_letters = DeadLetters(redis, keys, settings)
        self._heartbeat_key = keys.heartbeat(stage.group, consumer)
        self._running_key = keys.running(stage.group, consumer)

    def address(self, stream: str) -> str:
        return self.keys.stream(stream)

    # -- reading and claiming (consumer.py) ----------------------------------

    async def join(self) -> None:
        await self.group.ensure_group()

    async def token(self) -> str:
        return await self.committer.token()

    def own_pending(self, page: int) -> AsyncIterator[list[Delivery]]:
        return self.group.own_pending(page)

    async def read_new(self, count: int, block_ms: int) -> list[Delivery]:
        return await self.group.read_new(count, block_ms)

    async def claim_lost(self, held: Container[str]) -> list[Delivery]:
        return await self.group.claim_lost(held)

    async def consumers(self) -> list[str]:
        return await self.group.consumers()

    async def lease(self, mode: str, ttl_ms: int) -> bool:
        return await self.group.lease(mode, ttl_ms)

    async def claim_owned(self, start: str, count: int) -> list[Delivery] | None:
        return await self.group.claim_owned(start, count)

    async def read_owned(self, count: int) -> list[Delivery] | None:
        return await self.group.read_owned(count)

    async def live_consumers(self) -> list[str]:
        return await self.group.live_consumers()

    async def claim_dead(self, consumer: str, count: int) -> list[Delivery]:
        return await self.group.claim_dead(consumer, count)

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Delivery]:
        return await self.group.claim_stale(min_idle_ms, count)

    async def renew(self, ids: list[str]) -> list[str]:
        return await self.group.renew(ids)

    # -- committing (commit.py) ------------------------------------------------

    async def commit(self, batch: Sequence[Transition], token: str, suspect: Sequence[int] = ()) -> Verdict:
        return await self.committer.commit(batch, token, suspect)

    # -- upkeep ----------------------------------------------------------------

    async def heartbeat(self, ttl: float, holding: Mapping[str, int] | None = None) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self._heartbeat_key, int(time.time() * 1000), px=int(ttl * 1000))
        if holding:
            pipe.set(self._running_key, orjson.dumps(holding), px=int(ttl * 1000))
        else:
            pipe.delete(self._running_key)
        await pipe.execute()

    async def promote_due(self) -> int:
        return await promote_due(self.redis, self.keys, self.stage.source)

    async def trim(self) -> None:
        await trim_acknowledged(self.redis, self.keys.stream(self.stage.source))
        await self.dead_letters.apply_retention(self.stage.name)
        await retention.enforce(self.redis, self.keys, self.settings)  # the count bounds
        await trim_unread(self.redis, self.keys.errors, self.settings.errors_max_len)

    async def paused(self) -> bool:
        return bool(await self.redis.hexists(self.keys.paused, self.stage.name))

    async def cancels(self) -> bool:
        return await control.any_cancelled(self.redis, self.keys)

    async def cancelled(self, request_ids: Sequence[str]) -> Mapping[str, Cancel]:
        found = await control.cancelled(self.redis, self.keys, request_ids)
        return {rid: Cancel(c["by"], c["reason"]) for rid, c in found.items()}

    async def leave(self) -> None:
        await self.group.close()
        await self.committer.close()
        await self.redis.delete(self._heartbeat_key, self._running_key)
