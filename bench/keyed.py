"""``millstream bench keyed``: a keyed stage with 10 and 1,000 keys against the same stage unkeyed.

One stage (``--concurrency`` handlers, each holding its slot ``--work-ms``, as a
handler waiting on a provider does) runs in this process on an embedded
redis-server, over ``--tasks`` tasks published beforehand. Three runs:

* unkeyed: the baseline, the same stage without a key;
* 1,000 keys: Stage(key=...): the router, then 16 partitions, each key one task at a time;
* 10 keys: at most 10 tasks at once, whatever the concurrency, each waiting for the
  commit of its key's previous one.

Throughput is tasks out per second, from the first publish's end to the last output.
Last line: ``keyed_1000_per_s=<float> keyed_10_per_s=<float> unkeyed_per_s=<float> ratio=<float>``
(ratio: 1,000 keys over unkeyed).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from streams.engine.runner import stage_runners
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.redis import library
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import EmbeddedRedis
from streams.redis.transport import RedisTransport
from streams.settings import Settings
from streams.stage import Stage


async def _run(url: str, name: str, *, keys: int, tasks: int, concurrency: int, work_ms: float) -> float:
    redis = Redis.from_url(url)
    await library.load(redis)
    names = Keys("bench", name)
    settings = Settings(redis_url=url, consumer="bench", namespace="bench")
    done = 0
    finished = asyncio.Event()

    async def work(message: Message) -> list[Outgoing]:
        nonlocal done
        if work_ms:
            await asyncio.sleep(work_ms / 1000)
        done += 1
        if done == tasks:
            finished.set()
        return [Outgoing(message.payload)]

    stage = Stage("work", "in", work, sinks=["out"], concurrency=concurrency, batch_size=100,
                  max_in_flight=max(100, 2 * concurrency), key="k" if keys else "")
    publisher = Publisher(redis, names)
    for start in range(0, tasks, 1000):
        await publisher.publish_many("in", [({"n": n, "k": f"key-{n % max(1, keys)}"}, f"r{n}")
                                            for n in range(start, min(tasks, start + 1000))])
    transport = RedisTransport(redis, names, settings)
    runners = stage_runners(transport, stage, settings, Metrics(CollectorRegistry()))
    began = time.monotonic()
    jobs = [asyncio.create_task(r.run()) for r in runners]
    await finished.wait()
    took = time.monotonic() - began
    for r in runners:
        r.stop()
    await asyncio.gather(*jobs)
    await redis.aclose()
    return tasks / took


def keyed(
    tasks: Annotated[int, typer.Option(help="Tasks per run")] = 6000,
    concurrency: Annotated[int, typer.Option(min=1, help="Handlers of the stage")] = 32,
    work_ms: Annotated[float, typer.Option(help="Milliseconds each handler holds its slot")] = 5.0,
) -> None:
    """Throughput of a keyed stage (10 and 1,000 keys) against the same stage unkeyed."""
    with tempfile.TemporaryDirectory(prefix="millstream-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        try:
            typer.echo(f"bench keyed: {tasks} tasks, concurrency {concurrency}, {work_ms:g} ms per task")
            common = dict(tasks=tasks, concurrency=concurrency, work_ms=work_ms)
            plain = asyncio.run(_run(server.url, "plain", keys=0, **common))
            typer.echo(f"  unkeyed     {plain:8.0f} tasks/s")
            many = asyncio.run(_run(server.url, "many", keys=1000, **common))
            typer.echo(f"  1,000 keys  {many:8.0f} tasks/s  ({many / plain:.2f} of unkeyed)")
            few = asyncio.run(_run(server.url, "few", keys=10, **common))
            typer.echo(f"  10 keys     {few:8.0f} tasks/s  ({few / plain:.2f} of unkeyed; "
                       f"{few / 10:.0f}/s per key)")
        finally:
            server.stop()
    typer.echo(f"keyed_1000_per_s={many:.1f} keyed_10_per_s={few:.1f} unkeyed_per_s={plain:.1f} "
               f"ratio={many / plain:.2f}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("keyed")(keyed)
