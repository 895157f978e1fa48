"""The producer spool against a real redis-server (append-only file on) that goes away and comes back.

A steady load of 50 tasks/s runs while the server is stopped for 30 s and
started again on the same port: every task must be in the stream exactly once,
in the order it was published (the spool drains before later tasks go direct).
A second test freezes the server (SIGSTOP) so that publishes time out while
their commands wait in its socket: they run when it resumes, after the
producer spooled them, and the drain must not add them again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import redis as sync_redis

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import EmbeddedRedis
from streams.settings import Settings
from streams.spool import Accepted, SpoolingPublisher, SpoolSettings
from tests.conftest import require_tool

RATE = 50.0  # tasks per second
OUTAGE = 30.0  # seconds the server is away (issue #15)
AROUND = 2.0  # seconds of load before the stop and after the restart


def stream_tasks(url: str, keys: Keys) -> list[tuple[str, int]]:
    """(request id, n) of every entry of stream "in", in stream order."""
    client = sync_redis.Redis.from_url(url)
    try:
        return [(f[b"rid"].decode(), orjson.loads(f[b"d"])["n"]) for _, f in client.xrange(keys.stream("in"))]
    finally:
        client.close()


async def steady_load(producer: SpoolingPublisher, seconds: float, first: int) -> list[Accepted]:
    """Publish task n = first, first + 1, ... at RATE per second for ``seconds``; half with request ids."""
    start, accepted = time.monotonic(), []
    for k in range(int(seconds * RATE)):
        await asyncio.sleep(max(0.0, start + k / RATE - time.monotonic()))
        n = first + k
        accepted.append(await producer.publish("in", {"n": n}, f"r{n}" if n % 2 else None))
    return accepted


def assert_each_once_in_order(found: list[tuple[str, int]], accepted: list[Accepted]) -> None:
    times = Counter(rid for rid, _ in found)
    doubled = {rid: k for rid, k in times.items() if k > 1}
    assert not doubled, f"{len(doubled)} tasks published twice: {list(doubled)[:5]}"
    missing = {a.request_id for a in accepted} - set(times)
    assert not missing, f"{len(missing)} of {len(accepted)} tasks lost: {sorted(missing)[:5]}"
    assert [n for _, n in found] == list(range(len(accepted))), "the stream keeps the publish order"
    assert [rid for rid, _ in found] == [a.request_id for a in accepted]


async def test_every_task_published_through_a_30s_redis_outage_lands_once_in_order(tmp_path: Path):
    require_tool("redis-server")
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    keys = Keys("mst", f"t{uuid.uuid4().hex[:10]}")
    redis = connect(Settings(redis_url=server.url), socket_timeout=2)
    settings = SpoolSettings(spool_path=str(tmp_path / "spool.db"), spool_retry_max=0.5,
                             spool_attempt_timeout=2.0)
    try:
        await library.load(redis)
        async with SpoolingPublisher.open(Publisher(redis, keys), settings) as producer:
            drainer = asyncio.create_task(producer.run())
            accepted = await steady_load(producer, AROUND, 0)
            await asyncio.to_thread(server.stop)
            accepted += await steady_load(producer, OUTAGE, len(accepted))
            spooled = producer.depth
            server = await asyncio.to_thread(EmbeddedRedis, tmp_path / "redis", appendonly=True,
                                             port=server.port)
            accepted += await steady_load(producer, AROUND, len(accepted))
            async with asyncio.timeout(30):
                await producer.drained()
            drainer.cancel()
        assert spooled >= OUTAGE * RATE * 0.9, f"only {spooled} tasks spooled during the outage"
        assert sum(a.spooled for a in accepted) >= spooled
        assert_each_once_in_order(stream_tasks(server.url, keys), accepted)
    finally:
        await redis.aclose()
        server.stop()


async def test_publishes_that_timed_out_on_a_frozen_redis_run_once_after_it_resumes(tmp_path: Path):
    require_tool("redis-server")
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    keys = Keys("mst", f"t{uuid.uuid4().hex[:10]}")
    redis = connect(Settings(redis_url=server.url))
    settings = SpoolSettings(spool_path=str(tmp_path / "spool.db"), spool_retry_max=0.2,
                             spool_attempt_timeout=0.3)
    try:
        await library.load(redis)
        async with SpoolingPublisher.open(Publisher(redis, keys), settings) as producer:
            # concurrent, so that the pool holds a connection for each publish of the frozen phase
            accepted = await asyncio.gather(*(producer.publish("in", {"n": n}, f"r{n}") for n in range(10)))
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                # each sends its command on an open connection, then times out waiting for the reply
                frozen = await asyncio.gather(*(producer.publish("in", {"n": n}, f"r{n}") for n in range(10, 20)))
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            assert all(a.spooled for a in frozen)
            await redis.ping()  # on a new connection: served after what the frozen server had buffered
            assert len(stream_tasks(server.url, keys)) == 20, "the timed-out commands ran once it resumed"
            drainer = asyncio.create_task(producer.run())
            async with asyncio.timeout(20):
                await producer.drained()
            drainer.cancel()
        found = stream_tasks(server.url, keys)
        times = Counter(rid for rid, _ in found)
        assert all(times[a.request_id] == 1 for a in [*accepted, *frozen]), times.most_common(3)
        assert len(found) == len(accepted) + len(frozen)
    finally:
        await redis.aclose()
        server.stop()
