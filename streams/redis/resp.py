"""Commands packed as RESP bytes by us, sent on the client's pooled connections.

redis-py packs every argument in Python through several calls; a commit of
500 entries carries thousands of arguments, and packing them was a quarter of
a worker's time (docs/BENCHMARKS.md). ``bulk`` packs one argument with one
format operation; callers that know their shapes pack whole entries at once.
"""

from __future__ import annotations

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


async def call(redis: Redis, packed: bytes) -> Any:
    """Send ``packed`` (one whole command) and return the reply; a Redis error raises.

    A failure other than a Redis error reply may leave a half-read reply on the
    connection, so that connection is dropped rather than reused.
    """
    pool = redis.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(packed)
        return await conn.read_response()
    except ResponseError:
        raise
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
