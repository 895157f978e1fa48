"""Task status lookups: the last recorded transition of a request id.

Status records are kept in numbered buckets (one HSET per committed batch;
see ``write_status`` in functions/millstream.lua): ``status:head`` names the
current bucket ``n``; at most ``KEPT`` buckets, ``n - KEPT + 1`` to ``n``,
exist. The newest bucket holding the id has its latest state. Before the
first write there is no head: then the buckets are where earlier versions
numbered them, by time (``now // (status_ttl / 8)``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from redis.asyncio import Redis

from streams.redis.keys import Keys
from streams.settings import RETAINED_BUCKETS

BUCKETS = 8  # a bucket spans status_ttl / BUCKETS
KEPT = RETAINED_BUCKETS  # buckets alive at once: the current one and 8 older (KEPT in millstream.lua)


async def current_bucket(redis: Redis, head: str, ttl: float) -> int:
    """The number of the current bucket under ``head`` (a status or dedup head hash)."""
    n = await redis.hget(head, "n")
    if n is not None:
        return int(n)
    return int(time.time() * 1000) // max(1, int(ttl * 1000) // BUCKETS)


async def task_status(redis: Redis, keys: Keys, request_id: str, status_ttl: float) -> dict[str, Any] | None:
    """The task's last transition ({stage, state, entry, at}), or None if unknown or dropped."""
    newest = await current_bucket(redis, keys.status_head, status_ttl)
    pipe = redis.pipeline(transaction=False)
    # and one newer: a write may open the next bucket between the two round trips
    for bucket in range(newest + 1, newest - KEPT, -1):
        pipe.hget(keys.status(bucket), request_id)
    for found in await pipe.execute():
        if found is not None:
            return orjson.loads(found)  # type: ignore[no-any-return]
    return None
