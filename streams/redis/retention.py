"""Retained state: the count bounds on status and dedup records, and how much is kept.

What a pipeline keeps in Redis after its tasks are done, besides stream
entries that wait for the next trim: status records (``status:<n>``), dedup
records (``seen:<n>``), the events stream, error records and dead letters.
Status and dedup records are bounded by time (``status_ttl``,
``dedup_window``) in the Lua writes themselves; ``enforce`` adds the count
bounds (``status_max_records``, ``dedup_max_keys``), run by upkeep: when the
current bucket holds a ninth of the bound it opens the next one, which deletes
the oldest, and older buckets go, oldest first, while they hold more than the
bound; so between 8/9 of the bound and the bound are kept, plus what arrived
in the current bucket since the last run (rate x run interval). Bytes come
from ``MEMORY USAGE`` (Redis samples 5 elements of a key and extrapolates:
cheap, approximate).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio import Redis

from streams.figures import Retained
from streams.redis.keys import Keys
from streams.redis.library import fcall
from streams.redis.tasks import KEPT
from streams.settings import Settings


async def enforce(redis: Redis, keys: Keys, settings: Settings) -> tuple[int, int]:
    """Apply the count bounds once; return the (status, dedup) records kept after."""
    bounds = [settings.status_max_records, settings.dedup_max_keys]
    now = int(time.time() * 1000)
    status, dedup = await fcall(redis, "ms_retain", [keys.status_head, keys.seen_head], [now, *bounds])
    return int(status), int(dedup)


async def _buckets(redis: Redis, head: str, prefix: str) -> tuple[int, int]:
    n = await redis.hget(head, "n")
    if n is None:
        return 0, 0
    pipe = redis.pipeline(transaction=False)
    for bucket in range(int(n), int(n) - KEPT, -1):
        pipe.hlen(f"{prefix}{bucket}")
        pipe.memory_usage(f"{prefix}{bucket}")
    found = await pipe.execute()
    return sum(found[0::2]), sum(b or 0 for b in found[1::2])


async def _streams(redis: Redis, names: Sequence[str]) -> tuple[int, int]:
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.xlen(name)
        pipe.memory_usage(name)
    found = await pipe.execute()
    return sum(found[0::2]), sum(b or 0 for b in found[1::2])


async def measure(redis: Redis, keys: Keys) -> tuple[Retained, ...]:
    """Status, dedup, events and error records of ``keys.pipeline`` (pipeline-wide figures)."""
    return (
        Retained("status", *await _buckets(redis, keys.status_head, keys.status_prefix)),
        Retained("dedup", *await _buckets(redis, keys.seen_head, keys.seen_prefix)),
        Retained("events", *await _streams(redis, [keys.events])),
        Retained("errors", *await _streams(redis, [keys.errors])),
    )


async def dead_letters(redis: Redis, keys: Keys, stages: Sequence[str]) -> Retained:
    """The dead letters of ``stages`` together (kind ``dlq``)."""
    return Retained("dlq", *await _streams(redis, [keys.dlq(s) for s in stages]))
