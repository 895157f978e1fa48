"""Test access to the embedded redis-server launcher."""

from streams.redis.server import EmbeddedRedis as RedisServer
from streams.redis.server import free_port

__all__ = ["RedisServer", "free_port"]
