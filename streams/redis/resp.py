"""Commands packed as RESP bytes by us, sent on connections of our own (Channel).

redis-py packs every argument in Python through several calls; a commit of
500 entries carries thousands of arguments, and packing them was a quarter of
a worker's time (docs/BENCHMARKS.md). ``bulk`` packs one argument with one
format operation; callers that know their shapes pack whole entries at once.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError


def bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


def command(count: int, body: Sequence[bytes]) -> bytes:
    """A command of ``count`` arguments whose packed bulk strings are ``body``."""
    return b"*%d\r\n%b" % (count, b"".join(body))


class Channel:
    """One connection of our own for a hot loop (a stage's reads, its commits).

    Built like the client's connections (same URL, TLS and credentials) but
    outside its pool, and without a socket timeout: redis-py wraps every send
    in a task to time it. A call has one deadline for its send and its reply
    instead. Taking a connection from the pool and sending through it cost
    about 40 µs of CPU per call more (docs/BENCHMARKS.md), most of a small
    batch's overhead.
    """

    def __init__(self, redis: Redis) -> None:
        self._pool = redis.connection_pool
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            pool = self._pool
            self._conn = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        return self._conn

    async def call(self, packed: bytes, timeout: float) -> Any:  # noqa: ASYNC109 - a read timeout, see above
        """Send ``packed`` (one whole command); the reply, or the Redis error raised.

        Any other failure may leave half a reply on the connection, so the
        connection is dropped and the next call opens a new one.
        """
        conn = self._connection()
        try:
            async with asyncio.timeout(timeout):  # a frozen Redis must not hang a send either
                await conn.send_packed_command(packed)  # a PING first only after 30 s idle
                return await conn.read_response(timeout=math.inf)
        except ResponseError:
            raise
        except BaseException:
            self._conn = None
            await conn.disconnect()
            raise

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.disconnect()
