"""Periodic, atomic upkeep of streams: due retries back in, acknowledged entries out."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from streams.redis.keys import Keys
from streams.redis.library import fcall


async def promote_due(redis: Redis, keys: Keys, stream: str, limit: int = 1000) -> int:
    """Move retries of ``stream`` that are due from the delayed set back into the stream."""
    now = int(time.time() * 1000)
    moved = await fcall(redis, "ms_promote", [keys.delayed(stream), keys.stream(stream)], [now, limit])
    return int(moved)


async def trim_acknowledged(redis: Redis, key: str) -> int:
    """XTRIM MINID below what every group still needs; a stream without groups is kept whole."""
    return int(await fcall(redis, "ms_trim", [key], []))


async def trim_unread(redis: Redis, key: str, max_len: int) -> int:
    """Cap a stream that no consumer group reads (an error stream nobody consumes) at ``max_len``.

    A stream with groups is left to ``trim_acknowledged``, which never drops
    what a group still needs; 0 keeps everything.
    """
    if not max_len or not await redis.exists(key) or await redis.xinfo_groups(key):
        return 0
    return int(await redis.xtrim(key, maxlen=max_len, approximate=False))
