"""Sampling stream and group figures from Redis, for metrics and ``millstream status``.

Each sample also carries its pipeline's retained state (streams.redis.retention):
about 30 O(1) commands in two round trips, cheap at one sample per stream
every ``stats_interval``.

Lag in seconds is the age of the oldest entry not yet delivered to the group,
read from its ID's millisecond timestamp; the oldest pending age is how long
the longest-waiting delivered entry has been idle.
"""

from __future__ import annotations

import re
import time

from redis.asyncio import Redis

from streams.figures import GroupStats, StreamStats
from streams.redis.keys import Keys
from streams.redis.retention import measure


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _age(entry_id: str, now_ms: float) -> float:
    return max(0.0, (now_ms - int(entry_id.split("-")[0])) / 1000)


async def _first_after(redis: Redis, key: str, after: str) -> str | None:
    entries = await redis.xrange(key, min=f"({after}", count=1)
    return _text(entries[0][0]) if entries else None


async def _group(
    redis: Redis, keys: Keys, key: str, info: dict[str, object], now: float
) -> GroupStats:
    name, last = _text(info["name"]), _text(info["last-delivered-id"])  # type: ignore[arg-type]
    undelivered = await _first_after(redis, key, last)
    lag = info.get("lag")
    if not isinstance(lag, int):  # Redis cannot tell after deletions: count, bounded
        lag = len(await redis.xrange(key, min=f"({last}", count=100_000) or [])
    oldest = await redis.xpending_range(key, name, min="-", max="+", count=1)
    consumers = [_text(c["name"]) for c in await redis.xinfo_consumers(key, name)]
    beats = await redis.mget([keys.heartbeat(name, c) for c in consumers]) if consumers else []
    live = [int(b) for b in beats if b is not None]
    dlq = keys.dlq(name)
    first_dead = await redis.xrange(dlq, count=1)
    return GroupStats(
        group=name,
        lag=lag,
        lag_seconds=_age(undelivered, now) if undelivered else 0.0,
        pending=int(info["pending"]),  # type: ignore[call-overload]
        oldest_pending_seconds=int(oldest[0]["time_since_delivered"]) / 1000 if oldest else 0.0,
        consumers=len(consumers),
        live_consumers=len(live),
        heartbeat_age_seconds=max(((now - b) / 1000 for b in live), default=0.0),
        dlq_length=await redis.xlen(dlq),
        dlq_oldest_seconds=_age(_text(first_dead[0][0]), now) if first_dead else 0.0,
        entries_read=read if isinstance(read := info.get("entries-read"), int) else None,
    )


async def sample(redis: Redis, keys: Keys, stream: str) -> StreamStats:
    """Figures of logical stream ``stream`` of ``keys.pipeline`` and of each of its groups."""
    key, now = keys.stream(stream), time.time() * 1000
    infos = await redis.xinfo_groups(key) if await redis.exists(key) else []
    groups = tuple([await _group(redis, keys, key, info, now) for info in infos])
    return StreamStats(keys.pipeline, stream, await redis.xlen(key),
                       await redis.zcard(keys.delayed(stream)), groups, await measure(redis, keys))


async def discover(redis: Redis, namespace: str) -> list[tuple[Keys, str]]:
    """Every (pipeline keys, stream name) under ``namespace``, found with SCAN."""
    pattern = re.compile(rf"^{re.escape(namespace)}:\{{([^}}]+)\}}:stream:(.+)$")
    found = set()
    async for key in redis.scan_iter(match=f"{namespace}:{{*}}:stream:*", _type="STREAM", count=1000):
        match = pattern.match(_text(key))
        if match:
            found.add((match.group(1), match.group(2)))
    return [(Keys(namespace, pipeline), stream) for pipeline, stream in sorted(found)]
