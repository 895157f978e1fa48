"""Helpers to run stages in-process and to read what they wrote."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from streams.codec import decode
from streams.engine.runner import StageRunner
from streams.metrics import Metrics
from streams.pipeline import ID_FIELDS
from streams.redis.keys import Keys
from streams.redis.transport import RedisTransport
from streams.settings import Settings
from streams.stage import Stage


@contextlib.asynccontextmanager
async def running(redis: Redis, keys: Keys, stage: Stage, settings: Settings,
                  metrics: Metrics | None = None, id_fields: Sequence[str] = ID_FIELDS) -> AsyncIterator[StageRunner]:
    """Run ``stage`` while the block runs, for a pipeline declaring ``id_fields``; stop it gracefully after."""
    runner = StageRunner(RedisTransport(redis, keys, settings), stage, settings, metrics or Metrics(CollectorRegistry()),
                         id_fields=id_fields)
    task = asyncio.create_task(runner.run())
    await asyncio.wait([task, asyncio.create_task(runner.started.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    try:
        yield runner
    finally:
        runner.stop()
        await task


async def entries(redis: Redis, key: str) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(i.decode(), f) for i, f in await redis.xrange(key)]


async def payloads(redis: Redis, key: str) -> list[dict[str, Any]]:
    return [decode(f)[0] for _, f in await entries(redis, key)]


async def xlen_at_least(redis: Redis, key: str, n: int) -> bool:
    """Whether stream ``key`` holds at least ``n`` entries (a ``wait_for`` check)."""
    return int(await redis.xlen(key)) >= n


async def wait_for(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.02) -> Any:
    """Poll an async ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(every)
