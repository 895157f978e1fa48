"""``millstream bench priority``: critical tasks' latency behind a saturated normal backlog.

One stage (``--concurrency`` handlers, each holding its slot ``--work-ms``, as a
handler waiting on Triton or a provider does) runs in this process on an embedded
redis-server. A backlog of ``--backlog`` normal tasks is published at once, then
``--urgent`` critical tasks, paced over a few seconds while the backlog is still
draining. Three runs, the same tasks:

* priorities: the stage reads by priority (Stage(priorities=True)); the urgent tasks are critical;
* no priorities: the same stage without them; the urgent tasks queue behind the backlog;
* unloaded: the stage by priority with no backlog: the floor a critical task can reach.

A task's latency is from its publish to its handler's start. Printed per run: p50,
p95 and max of the urgent tasks, and the backlog's drain rate (entries/s), so the
cost of reading four lanes shows too. Last line:
``critical_p95_ms=<float> unprioritized_p95_ms=<float> unloaded_p95_ms=<float> ratio=<float>``
(ratio: critical p95 with priorities over the unloaded p95).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NamedTuple

import typer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from streams.engine.runner import stage_runners
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.pipeline import Pipeline
from streams.redis import library
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import EmbeddedRedis
from streams.redis.transport import RedisTransport
from streams.settings import Settings
from streams.stage import Stage


class Run(NamedTuple):
    latencies_ms: list[float]  # the urgent tasks', publish to handler start
    drain_per_s: float  # backlog entries handled per second


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(url: str, name: str, *, priorities: bool, backlog: int, urgent: int, concurrency: int,
               work_ms: float) -> Run:
    redis = Redis.from_url(url)
    await library.load(redis)
    keys = Keys("bench", name)
    settings = Settings(redis_url=url, consumer="bench", namespace="bench")
    started: dict[str, float] = {}
    normal_done: list[float] = []
    finished = asyncio.Event()

    async def work(message: Message) -> list[Outgoing]:
        if message.payload["urgent"]:
            started[message.request_id] = time.time()
        else:
            normal_done.append(time.monotonic())
        if len(started) == urgent and len(normal_done) == backlog:
            finished.set()
        await asyncio.sleep(work_ms / 1000)
        return [Outgoing(message.payload)]

    stage = Stage("work", "in", work, sinks=["out"], concurrency=concurrency, batch_size=100,
                  max_in_flight=max(100, 2 * concurrency), priorities=priorities)
    pipeline = Pipeline(name, [stage])
    publisher = Publisher(redis, keys, prioritized=pipeline.prioritized)
    for start in range(0, backlog, 1000):
        await publisher.publish_many("in", [({"urgent": False, "n": n}, f"n{n}")
                                            for n in range(start, min(backlog, start + 1000))])
    transport = RedisTransport(redis, keys, settings)
    runners = stage_runners(transport, stage, settings, Metrics(CollectorRegistry()),
                            prioritized=pipeline.prioritized)
    tasks = [asyncio.create_task(r.run()) for r in runners]
    began = time.monotonic()
    await asyncio.sleep(1.0 if backlog else 0.2)  # the backlog is draining at full speed
    sent: dict[str, float] = {}
    for n in range(urgent):
        rid = f"u{n}"
        sent[rid] = time.time()
        await publisher.publish("in", {"urgent": True, "n": n}, rid, "critical" if priorities else None)
        await asyncio.sleep(4.0 / urgent)
    await finished.wait()
    for r in runners:
        r.stop()
    await asyncio.gather(*tasks)
    await redis.aclose()
    drained = (normal_done[-1] - began) if normal_done else 0.0
    return Run([(started[r] - sent[r]) * 1000 for r in sent], backlog / drained if drained else 0.0)


def _show(label: str, run: Run) -> None:
    lat = run.latencies_ms
    typer.echo(f"  {label:<14} urgent p50 {statistics.median(lat):9.1f} ms  p95 {_quantile(lat, 0.95):9.1f} "
               f"ms  max {max(lat):9.1f} ms   backlog drained at {run.drain_per_s:7.0f}/s")


def priority(
    backlog: Annotated[int, typer.Option(help="Normal tasks queued before the urgent ones")] = 6000,
    urgent: Annotated[int, typer.Option(min=1, help="Critical tasks, paced over 4 s")] = 40,
    concurrency: Annotated[int, typer.Option(min=1, help="Handlers of the stage")] = 8,
    work_ms: Annotated[float, typer.Option(help="Milliseconds each handler holds its slot")] = 10.0,
) -> None:
    """Latency of critical tasks behind a saturated normal backlog, with and without priorities."""
    with tempfile.TemporaryDirectory(prefix="millstream-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        try:
            typer.echo(f"bench priority: backlog {backlog} normal, {urgent} critical, concurrency "
                       f"{concurrency}, {work_ms:g} ms per task")
            common = dict(urgent=urgent, concurrency=concurrency, work_ms=work_ms)
            by_level = asyncio.run(_run(server.url, "prio", priorities=True, backlog=backlog, **common))
            _show("priorities", by_level)
            plain = asyncio.run(_run(server.url, "plain", priorities=False, backlog=backlog, **common))
            _show("no priorities", plain)
            floor = asyncio.run(_run(server.url, "idle", priorities=True, backlog=0, **common))
            _show("unloaded", floor)
        finally:
            server.stop()
    ours, theirs, idle = (_quantile(r.latencies_ms, 0.95) for r in (by_level, plain, floor))
    typer.echo(f"critical_p95_ms={ours:.1f} unprioritized_p95_ms={theirs:.1f} unloaded_p95_ms={idle:.1f} "
               f"ratio={ours / idle:.2f}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("priority")(priority)
