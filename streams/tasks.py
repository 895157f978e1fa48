"""Task status lookups: the last recorded transition of a request id.

Status records are kept in time-bucketed hashes (one HSET per committed batch;
see ``write_status`` in functions/millstream.lua): bucket ``n`` covers
``[n * span, (n + 1) * span)`` ms with ``span = status_ttl / 8`` and expires
``status_ttl`` after its end. The newest bucket holding the id has its latest
state.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from redis.asyncio import Redis

from streams.keys import Keys

BUCKETS = 8


async def task_status(redis: Redis, keys: Keys, request_id: str, status_ttl: float) -> dict[str, Any] | None:
    """The task's last transition ({stage, state, entry, at}), or None if unknown or expired."""
    span = int(status_ttl * 1000) // BUCKETS
    newest = int(time.time() * 1000) // span
    pipe = redis.pipeline(transaction=False)
    for bucket in range(newest, newest - BUCKETS - 2, -1):
        pipe.hget(keys.status(bucket), request_id)
    for found in await pipe.execute():
        if found is not None:
            return orjson.loads(found)  # type: ignore[no-any-return]
    return None
