"""The backends the conformance suite runs against: the memory transport and real Redis.

Each test gets a ``Backend``: its stage transports (``transport``) plus a small
adapter for reading what was written (``entries``, ``pending``, ...), which
tests use only to look, never to act on the group. Stage "s" and stage "x"
are two groups on stream "in"; "s" forwards to "out".

Time: on memory, ``elapse`` moves the broker's ManualClock; on Redis it does
nothing and tests poll (``wait_for``) until real time has passed, with short
heartbeats and idle times (50 to 200 ms).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import pytest
from redis.asyncio import Redis

from streams.message import Message, Outgoing
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.tasks import task_status
from streams.redis.transport import RedisStageTransport, RedisTransport
from streams.settings import Settings
from streams.stage import Stage
from streams.testing import ManualClock, MemoryBroker, MemoryPublisher, MemoryTransport
from streams.testing.memory_streams import format_id, parse_id
from streams.transport import StageTransport


async def _noop(message: Message) -> Sequence[Outgoing]:
    return []


STAGE = Stage("s", "in", _noop, sinks=["out"])
OTHER = Stage("x", "in", _noop)

Fields = dict[bytes, bytes]


class Backend(Protocol):
    name: str

    def transport(self, consumer: str, stage: Stage = STAGE) -> StageTransport: ...
    async def leave(self, transport: StageTransport) -> None: ...
    async def publish(self, n: int, start: int = 0) -> list[str]: ...
    async def entries(self, stream: str) -> list[tuple[str, Fields]]: ...
    async def pending(self, group: str = "s") -> list[tuple[str, str, int]]: ...
    async def idle_ms(self, entry_id: str, group: str = "s") -> int: ...
    async def delayed(self, stream: str) -> int: ...
    async def dead_letters(self, stage: str) -> list[Fields]: ...
    async def list(self, name: str) -> list[bytes]: ...
    async def status(self, request_id: str) -> dict[str, Any] | None: ...
    async def delete(self, stream: str, entry_id: str) -> None: ...
    def now_ms(self) -> int: ...
    async def elapse(self, seconds: float) -> None: ...
    async def close(self) -> None: ...


def _items(n: int, start: int) -> list[tuple[dict[str, Any], str | None]]:
    return [({"n": i}, f"r{i}") for i in range(start, start + n)]


def _fields(flat: list[bytes]) -> Fields:
    return dict(zip(flat[::2], flat[1::2], strict=False))


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.broker = MemoryBroker(self.clock)
        self.memory = MemoryTransport(self.broker, "conformance", Settings(consumer="memory"))
        self.publisher = MemoryPublisher(self.broker)

    def transport(self, consumer: str, stage: Stage = STAGE) -> StageTransport:
        return self.memory.for_stage(stage, consumer)

    async def leave(self, transport: StageTransport) -> None:
        await transport.leave()

    async def publish(self, n: int, start: int = 0) -> list[str]:
        return await self.publisher.publish_many("in", _items(n, start))

    async def entries(self, stream: str) -> list[tuple[str, Fields]]:
        found = self.broker.streams.get(stream)
        return [(format_id(i), _fields(found.entries[i])) for i in found.ids] if found else []

    async def pending(self, group: str = "s") -> list[tuple[str, str, int]]:
        pel = self.broker.stream("in").group(group).pending
        return [(format_id(i), pel[i].consumer, pel[i].deliveries) for i in sorted(pel)]

    async def idle_ms(self, entry_id: str, group: str = "s") -> int:
        return self.broker.now_ms() - self.broker.stream("in").group(group).pending[parse_id(entry_id)].delivered_ms

    async def delayed(self, stream: str) -> int:
        return len(self.broker.delayed.get(stream, {}))

    async def dead_letters(self, stage: str) -> list[Fields]:
        found = self.broker.dead_letters.get(stage)
        return [_fields(found.entries[i]) for i in found.ids] if found else []

    async def list(self, name: str) -> list[bytes]:
        return list(self.broker.lists.get(name, []))

    async def status(self, request_id: str) -> dict[str, Any] | None:
        return self.broker.status.get(request_id)

    async def delete(self, stream: str, entry_id: str) -> None:
        self.broker.stream(stream).delete(parse_id(entry_id))

    def now_ms(self) -> int:
        return self.broker.now_ms()

    async def elapse(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def close(self) -> None:
        return None


class RedisBackend:
    name = "redis"

    def __init__(self, redis: Redis, keys: Keys, settings: Settings) -> None:
        self.redis, self.keys, self.settings = redis, keys, settings
        self.redis_transport = RedisTransport(redis, keys, settings)
        self._open: list[RedisStageTransport] = []

    def transport(self, consumer: str, stage: Stage = STAGE) -> StageTransport:
        made = self.redis_transport.for_stage(stage, consumer)
        self._open.append(made)
        return made

    async def leave(self, transport: StageTransport) -> None:
        self._open = [t for t in self._open if t is not transport]
        await transport.leave()

    async def publish(self, n: int, start: int = 0) -> list[str]:
        return await Publisher.from_settings(self.redis, self.keys, self.settings).publish_many(
            "in", _items(n, start))

    async def entries(self, stream: str) -> list[tuple[str, Fields]]:
        return [(i.decode(), f) for i, f in await self.redis.xrange(self.keys.stream(stream))]

    async def pending(self, group: str = "s") -> list[tuple[str, str, int]]:
        found = await self.redis.xpending_range(self.keys.stream("in"), group, "-", "+", 1000)
        return [(p["message_id"].decode(), p["consumer"].decode(), p["times_delivered"]) for p in found]

    async def idle_ms(self, entry_id: str, group: str = "s") -> int:
        [found] = await self.redis.xpending_range(self.keys.stream("in"), group, entry_id, entry_id, 1)
        return int(found["time_since_delivered"])

    async def delayed(self, stream: str) -> int:
        return int(await self.redis.zcard(self.keys.delayed(stream)))

    async def dead_letters(self, stage: str) -> list[Fields]:
        return [f for _, f in await self.redis.xrange(self.keys.dlq(stage))]

    async def list(self, name: str) -> list[bytes]:
        return list(await self.redis.lrange(name, 0, -1))

    async def status(self, request_id: str) -> dict[str, Any] | None:
        return await task_status(self.redis, self.keys, request_id, self.settings.status_ttl)

    async def delete(self, stream: str, entry_id: str) -> None:
        await self.redis.xdel(self.keys.stream(stream), entry_id)

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    async def elapse(self, seconds: float) -> None:
        return None  # real time passes: tests poll until it has

    async def close(self) -> None:
        for transport in self._open:
            await transport.leave()


@pytest.fixture(params=["memory", "redis"])
def made(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return MemoryBackend()
    return RedisBackend(request.getfixturevalue("redis"), request.getfixturevalue("keys"),
                        request.getfixturevalue("settings"))


@pytest.fixture
async def backend(made: Backend) -> AsyncIterator[Backend]:
    yield made
    await made.close()
