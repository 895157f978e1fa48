"""Periodic, atomic upkeep of streams: due retries back in, acknowledged entries out."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from streams.keys import Keys
from streams.redis.library import fcall


async def promote_due(redis: Redis, keys: Keys, stream: str, limit: int = 1000) -> int:
    """Move retries of ``stream`` that are due from the delayed set back into the stream."""
    now = int(time.time() * 1000)
    moved = await fcall(redis, "ms_promote", [keys.delayed(stream), keys.stream(stream)], [now, limit])
    return int(moved)


async def trim_acknowledged(redis: Redis, key: str) -> int:
    """XTRIM MINID below what every group still needs; a stream without groups is kept whole."""
    return int(await fcall(redis, "ms_trim", [key], []))
