"""Pausing and resuming a stage across every worker: the ``paused`` hash (streams.redis.keys).

A stage is paused while its name is a field of ``Keys.paused`` (value: JSON
``{"by", "at"}``); its runners read that in their upkeep (``RedisStageTransport.paused``),
so a pause outlives worker restarts and reaches every worker within about
``claim_interval``. Each pause or resume that changes the hash also appends one
entry to the events stream (fields ``stage``, ``at``, ``control``, ``by``; no
``t``), in the same MULTI/EXEC: readers of the events stream see exactly the
changes. Pausing a paused stage or resuming a running one changes nothing and
writes no event.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from streams.names import checked
from streams.redis.keys import Keys


async def pause(redis: Redis, keys: Keys, stage: str, by: str, events_maxlen: int) -> dict[str, Any]:
    """Pause ``stage``; answer ``{"stage", "paused": True, "by", "at", "changed"}``.

    Already paused: the earlier pause's ``by`` and ``at``, ``changed`` False.
    """
    checked("stage", stage)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.paused)
                current = await pipe.hget(keys.paused, stage)
                if current is not None:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return {"stage": stage, "paused": True, **_record(current), "changed": False}
                at = int(time.time() * 1000)
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hset(keys.paused, stage, orjson.dumps({"by": by, "at": at}))
                _event(pipe, keys, stage, at, "paused", by, events_maxlen)
                await pipe.execute()
                return {"stage": stage, "paused": True, "by": by, "at": at, "changed": True}
            except WatchError:  # paused or resumed meanwhile by someone else: look again
                continue


async def resume(redis: Redis, keys: Keys, stage: str, by: str, events_maxlen: int) -> dict[str, Any]:
    """Resume ``stage``; answer ``{"stage", "paused": False, "changed"}`` (False: it was not paused)."""
    checked("stage", stage)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.paused)
                if not await pipe.hexists(keys.paused, stage):
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return {"stage": stage, "paused": False, "changed": False}
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hdel(keys.paused, stage)
                _event(pipe, keys, stage, int(time.time() * 1000), "resumed", by, events_maxlen)
                await pipe.execute()
                return {"stage": stage, "paused": False, "changed": True}
            except WatchError:
                continue


async def paused(redis: Redis, keys: Keys) -> dict[str, dict[str, Any]]:
    """The paused stages: stage -> ``{"by", "at"}``."""
    found = await redis.hgetall(keys.paused)
    return {_text(stage): _record(value) for stage, value in sorted(found.items())}


def _event(pipe: Pipeline, keys: Keys, stage: str, at: int, control: str, by: str, maxlen: int) -> None:
    pipe.xadd(keys.events, {"stage": stage, "at": at, "control": control, "by": by},
              maxlen=maxlen, approximate=True)


def _record(value: bytes | str) -> dict[str, Any]:
    """``{"by", "at"}`` from a hash value; a value not written by ``pause`` reads as unknown."""
    try:
        found = orjson.loads(value)
    except orjson.JSONDecodeError:
        found = None
    if not isinstance(found, dict):
        found = {}
    at = found.get("at")
    return {"by": str(found.get("by", "unknown")), "at": at if isinstance(at, int) else 0}


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
