"""``millstream bench soak``: memory over a long run, with small retention bounds that are reached.

A no-op 3-stage pipeline (one worker process per stage, ``python -m streams
worker``) on an embedded redis-server; this process publishes ``--tasks``
tasks with request ids at a steady ``--rate`` through the real publisher
(status, dedup and event records), runs the count bounds every
``--trim-interval`` seconds (``streams.redis.retention.enforce``, the upkeep call) and
samples, every ``--sample-every`` seconds, each worker's RSS (/proc), Redis
``used_memory`` and the retained records. The last stage emits nothing, so
every stream is trimmed as it is acknowledged. The baseline is the same run at
its midpoint: with bounds reached early, memory at the end over memory at 50%
is about 1 when nothing grows. Last line:
``redis_mid_mb=<f> redis_end_mb=<f> redis_ratio=<f> rss_mid_mb=<f> rss_end_mb=<f> rss_ratio=<f>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from redis.asyncio import Redis

from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis import library, retention
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import EmbeddedRedis
from streams.settings import Settings
from streams.stage import Stage

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("s1", "s2", "s3")


async def _forward(message: Message) -> list[Outgoing]:
    return [Outgoing(message.payload)]


async def _finish(message: Message) -> list[Outgoing]:
    return []


def soak_pipeline(settings: Settings) -> Pipeline:
    """in -> s1 -> a -> s2 -> b -> s3 (which ends each task)."""
    return Pipeline(os.environ["MSSOAK_PIPELINE"], [
        Stage("s1", "in", _forward, sinks=["a"], batch_size=200, max_in_flight=400),
        Stage("s2", "a", _forward, sinks=["b"], batch_size=200, max_in_flight=400),
        Stage("s3", "b", _finish, batch_size=200, max_in_flight=400),
    ])


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    published: int
    done: int
    redis_bytes: int
    rss_bytes: tuple[int, ...]
    retained: dict[str, int]


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _spawn(url: str, keys: Keys, env_bounds: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
    env.update(PYTHONPATH=str(ROOT), MSSOAK_PIPELINE=keys.pipeline, MILLSTREAM_REDIS_URL=url,
               MILLSTREAM_NAMESPACE=keys.namespace, MILLSTREAM_METRICS_PORT="0",
               MILLSTREAM_LOG_LEVEL="WARNING", **env_bounds)
    return [subprocess.Popen([sys.executable, "-m", "streams", "worker", "bench.soak:soak_pipeline",
                              "--stage", name], cwd=ROOT, env=env) for name in STAGES]


async def _done(redis: Redis, keys: Keys) -> int:
    """Tasks s3 acknowledged: entries its group read minus those still pending."""
    for group in await redis.xinfo_groups(keys.stream("b")):
        if group["name"] in (b"s3", "s3"):
            return int(group.get("entries-read") or 0) - int(group["pending"])
    return 0


async def _sample(redis: Redis, keys: Keys, started: float, published: int,
                  workers: list[subprocess.Popen[bytes]]) -> Sample:
    found = {r.kind: r.records for r in await retention.measure(redis, keys)}
    used = int((await redis.info("memory"))["used_memory"])
    return Sample(time.monotonic() - started, published, await _done(redis, keys), used,
                  tuple(_rss(w.pid) for w in workers), found)


async def _publish(publisher: Publisher, tasks: int, rate: float, progress: list[int]) -> None:
    """Publish ``tasks`` at ``rate`` per second, in steps of 0.1 s, on schedule (catching up if late)."""
    started, sent = time.monotonic(), 0
    while sent < tasks:
        due = min(tasks, int((time.monotonic() - started) * rate) + 1)
        for i in range(sent, due, 200):
            ids = [uuid.uuid4().hex for _ in range(min(200, due - i))]
            items = [({"request_id": rid, "n": i + k}, rid) for k, rid in enumerate(ids)]
            await publisher.publish_many("in", items)
        sent = progress[0] = due
        await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))


async def _enforce(redis: Redis, keys: Keys, settings: Settings, stop: asyncio.Event) -> None:
    """The count bounds every trim_interval, as each stage runner's upkeep runs them (redis.retention)."""
    while not stop.is_set():
        await retention.enforce(redis, keys, settings)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.trim_interval)


async def run(url: str, settings: Settings, tasks: int, rate: float, every: float,
              env_bounds: dict[str, str]) -> list[Sample]:
    keys = Keys("soak", f"p{uuid.uuid4().hex[:8]}")
    redis = connect(settings)
    await library.load(redis)
    workers = _spawn(url, keys, env_bounds)
    samples: list[Sample] = []
    try:
        while not await redis.exists(keys.stream("b")):  # noqa: ASYNC110 - polls Redis for s3's group
            await asyncio.sleep(0.2)
        progress, stop, started = [0], asyncio.Event(), time.monotonic()
        publishing = asyncio.create_task(_publish(Publisher.from_settings(redis, keys, settings), tasks, rate,
                                                  progress))
        upkeep = asyncio.create_task(_enforce(redis, keys, settings, stop))
        while True:
            samples.append(await _sample(redis, keys, started, progress[0], workers))
            s = samples[-1]
            rss = "/".join(f"{r / 2**20:.0f}" for r in s.rss_bytes)
            typer.echo(f"t={s.at:7.1f}s published={s.published} done={s.done} "
                       f"redis={s.redis_bytes / 2**20:.1f}MB rss={rss}MB retained={s.retained}")
            if s.done >= tasks or any(w.poll() is not None for w in workers):
                break
            await asyncio.sleep(every)
        stop.set()
        await publishing
        await upkeep
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(30)
        await redis.aclose()
    return samples


def _at(samples: list[Sample], fraction: float) -> Sample:
    """The first sample with at least ``fraction`` of the tasks published."""
    target = fraction * samples[-1].published
    return next(s for s in samples if s.published >= target)


def soak(
    tasks: Annotated[int, typer.Option(help="Tasks to publish")] = 1_000_000,
    rate: Annotated[float, typer.Option(help="Tasks published per second")] = 1000.0,
    status_max_records: Annotated[int, typer.Option(help="MILLSTREAM_STATUS_MAX_RECORDS")] = 100_000,
    dedup_max_keys: Annotated[int, typer.Option(help="MILLSTREAM_DEDUP_MAX_KEYS")] = 100_000,
    events_maxlen: Annotated[int, typer.Option(help="MILLSTREAM_EVENTS_MAXLEN")] = 10_000,
    trim_interval: Annotated[float, typer.Option(help="Seconds between trims and count-bound runs")] = 2.0,
    sample_every: Annotated[float, typer.Option(help="Seconds between samples")] = 10.0,
) -> None:
    """Publish at a steady rate for a long run; worker RSS and Redis memory must stay flat at the bounds."""
    bounds = {"MILLSTREAM_STATUS_MAX_RECORDS": str(status_max_records),
              "MILLSTREAM_DEDUP_MAX_KEYS": str(dedup_max_keys),
              "MILLSTREAM_EVENTS_MAXLEN": str(events_maxlen), "MILLSTREAM_TRIM_INTERVAL": str(trim_interval)}
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        settings = replace(Settings(redis_url=server.url, metrics_port=0),
                           status_max_records=status_max_records, dedup_max_keys=dedup_max_keys,
                           events_maxlen=events_maxlen, trim_interval=trim_interval)
        try:
            samples = asyncio.run(run(server.url, settings, tasks, rate, sample_every, bounds))
        finally:
            server.stop()
    mid, end = _at(samples, 0.5), samples[-1]
    rss_mid, rss_end = max(mid.rss_bytes), max(end.rss_bytes)
    typer.echo(f"{end.done} of {tasks} tasks done in {end.at:.0f} s ({end.done / end.at:.0f}/s); "
               f"bounds: status {status_max_records}, dedup {dedup_max_keys}, events {events_maxlen}; "
               f"at the end {end.retained}")
    typer.echo(f"redis_mid_mb={mid.redis_bytes / 2**20:.1f} redis_end_mb={end.redis_bytes / 2**20:.1f} "
               f"redis_ratio={end.redis_bytes / mid.redis_bytes:.3f} rss_mid_mb={rss_mid / 2**20:.1f} "
               f"rss_end_mb={rss_end / 2**20:.1f} rss_ratio={rss_end / rss_mid:.3f}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("soak")(soak)
