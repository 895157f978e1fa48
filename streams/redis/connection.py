"""Redis clients built from settings; the only place that connects."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio import Redis

from streams.settings import Settings


def connect(settings: Settings, **options: Any) -> Redis:
    """An asyncio client for ``settings.redis_url``: redis://, rediss://, unix://, ACL user:pass.

    Responses stay bytes: payloads are orjson bytes and decoding them twice is waste.
    """
    defaults: dict[str, Any] = {
        "decode_responses": False, "health_check_interval": 30,
        # Without a timeout, a reply lost in a Redis restart is awaited forever (a commit hung
        # so in a test); every blocking read of ours waits well under this.
        "socket_timeout": 30, "socket_connect_timeout": 5,
        # redis-py 8 refuses a command past 100 connections in use (MaxConnectionsError): an API
        # serving many requests at once, or a stage with a high concurrency, can need more.
        "max_connections": 1000,
    }
    if not settings.redis_url.startswith("unix://"):  # Unix sockets take no keepalive option
        defaults["socket_keepalive"] = True
    return aioredis.Redis.from_url(settings.redis_url, **{**defaults, **options})
