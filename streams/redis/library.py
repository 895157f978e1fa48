"""Loading and calling the ``millstream`` Redis function library (functions/millstream.lua)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from streams.errors import TransportError

SOURCE = files("streams.redis").joinpath("functions/millstream.lua").read_text()


async def load(redis: Redis) -> None:
    """Install (or replace) the library; needs Redis >= 7 for FUNCTION LOAD."""
    try:
        await redis.function_load(SOURCE, replace=True)
    except ResponseError as error:
        raise TransportError(
            f"cannot load the millstream Redis functions ({error}); millstream needs Redis >= 7"
        ) from error


async def fcall(redis: Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """Call a library function; a missing library (server restarted empty) is reloaded once."""
    try:
        return await redis.fcall(name, len(keys), *keys, *args)
    except ResponseError as error:
        if "Function not found" not in str(error):
            raise
        await load(redis)
        return await redis.fcall(name, len(keys), *keys, *args)
