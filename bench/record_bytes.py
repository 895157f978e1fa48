"""``millstream bench record-bytes``: what each retained record costs Redis, measured.

On an embedded redis-server it publishes ``--tasks`` tasks (legacy-shaped
payloads, 32-hex request ids, batches of ``--batch``) with the real
``ms_publish``, then runs a stage that refuses ``--failures`` tasks (error
record plus dead letter, the real runner). For each kind of retained state it
reports bytes per record twice: ``MEMORY USAGE <key> SAMPLES 0`` (exact, all
elements) summed over the kind's keys, and the drop of INFO ``used_memory``
when those keys are deleted. Last line: ``<kind>=<bytes per record>`` per kind
(from the used_memory drop).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from streams.engine.runner import StageRunner
from streams.errors import RetryableError
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import EmbeddedRedis
from streams.redis.transport import RedisTransport
from streams.settings import Settings
from streams.stage import Stage


def task(n: int) -> dict[str, object]:
    """A task shaped like the legacy contract's (CONTRACTS.md)."""
    return {"request_id": uuid.uuid4().hex, "image_url": f"https://cdn.example.com/products/{n:08d}.jpg",
            "image_id": f"img-{n:08d}", "is_long": n % 2 == 0}


async def _used(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def _keys_of(redis: Redis, pattern: str) -> list[str]:
    return [k.decode() async for k in redis.scan_iter(match=pattern, count=1000)]


async def _cost(redis: Redis, names: list[str], records: int) -> tuple[float, float]:
    """(MEMORY USAGE, used_memory drop on DEL) per record of the keys ``names``."""
    usage = sum([await redis.memory_usage(n, samples=0) or 0 for n in names])
    before = await _used(redis)
    await redis.delete(*names)
    return usage / records, (before - await _used(redis)) / records


async def _refuse(message: Message) -> list[Outgoing]:
    raise RetryableError(f"bench: refusing {message.request_id}")


async def _fail(redis: Redis, keys: Keys, settings: Settings, failures: int) -> None:
    publisher = Publisher.from_settings(redis, keys, settings)
    for i in range(0, failures, 100):
        await publisher.publish_many("bad", [(task(n), None) for n in range(i, min(failures, i + 100))])
    # one attempt, then the DLQ: an error record and a dead letter per task
    stage = Stage("refuse", "bad", _refuse, batch_size=100, max_attempts=1)
    # The image pipeline's id fields, so its error records are measured at their real size.
    runner = StageRunner(RedisTransport(redis, keys, settings), stage, settings, Metrics(CollectorRegistry()),
                         id_fields=("request_id", "image_id"))
    job = asyncio.create_task(runner.run())
    while await redis.xlen(keys.dlq("refuse")) < failures:  # noqa: ASYNC110 - polls Redis, no event to wait on
        await asyncio.sleep(0.05)
    runner.stop()
    await job


async def measure(url: str, tasks: int, batch: int, failures: int) -> dict[str, tuple[float, float]]:
    settings = Settings(redis_url=url, metrics_port=0, claim_interval=0.2)
    redis = connect(settings)
    await library.load(redis)
    keys = Keys("rb", f"p{uuid.uuid4().hex[:8]}")
    try:
        publisher = Publisher.from_settings(redis, keys, settings)
        for i in range(0, tasks, batch):
            items = [(t, str(t["request_id"])) for t in map(task, range(i, min(tasks, i + batch)))]
            await publisher.publish_many("tasks", items)
        out = {
            "status": await _cost(redis, await _keys_of(redis, keys.status_prefix + "[0-9]*"), tasks),
            "dedup": await _cost(redis, await _keys_of(redis, keys.seen_prefix + "[0-9]*"), tasks),
            "event": await _cost(redis, [keys.events], tasks),
            "stream_entry": await _cost(redis, [keys.stream("tasks")], tasks),
        }
        await redis.delete(keys.status_head, keys.seen_head)
        await _fail(redis, keys, settings, failures)
        out["error_record"] = await _cost(redis, [keys.errors], failures)
        out["dlq_entry"] = await _cost(redis, [keys.dlq("refuse")], failures)
        return out
    finally:
        await redis.aclose()


def record_bytes(
    tasks: Annotated[int, typer.Option(help="Tasks published")] = 100_000,
    batch: Annotated[int, typer.Option(help="Tasks per publish call (and per event entry)")] = 10,
    failures: Annotated[int, typer.Option(help="Tasks refused: error records and dead letters")] = 5_000,
) -> None:
    """Bytes per retained record of each kind, from MEMORY USAGE and from used_memory deltas."""
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        try:
            found = asyncio.run(measure(server.url, tasks, batch, failures))
        finally:
            server.stop()
    typer.echo(f"{tasks} tasks in batches of {batch}, {failures} refused; bytes per record:")
    for kind, (usage, drop) in found.items():
        typer.echo(f"  {kind:13} MEMORY USAGE {usage:7.1f}   used_memory drop {drop:7.1f}")
    typer.echo(" ".join(f"{kind}={drop:.1f}" for kind, (_, drop) in found.items()))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("record-bytes")(record_bytes)
