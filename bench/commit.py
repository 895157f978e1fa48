"""``millstream bench commit``: Redis's own time per entry in a commit, against XADD + XACK.

A stage's commit (``ms_commit``: fenced outputs, XACK, status record, event)
runs on Redis's single thread, which every stage of every pipeline shares; its
cost there is what the other stages wait behind. This benchmark reads batches
of envelopes as a consumer would and commits each as forwards, then moves the
same number of entries with the raw loop's pipelined XADDs and one XACK. Both
are timed as CPU time of Redis's main thread (``/proc/<pid>/schedstat``, in
nanoseconds), which covers parsing the commands as well as running them, and
leaves the client and its loopback out. Linux only.
Last line: ``commit_us_per_entry=<float> baseline_us_per_entry=<float> ratio=<float>``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from redis.asyncio import Redis

from streams.codec import encode_payload, envelope
from streams.delivery import Delivery
from streams.redis import library
from streams.redis.commit import Committer
from streams.redis.consumer import GroupConsumer
from streams.redis.keys import Keys
from streams.redis.server import EmbeddedRedis
from streams.transition import Forward, State, Transition

STATUS_TTL_MS = 86_400_000
EVENTS_MAXLEN = 10_000


async def _fill(redis: Redis, key: str, count: int, tag: str) -> None:
    pipe = redis.pipeline(transaction=False)
    now = int(time.time() * 1000)
    for i in range(count):
        fields = envelope(encode_payload({"n": i, "body": "x" * 64}), f"{tag}-{i}", 1, now)
        pipe.xadd(key, dict(zip(fields[::2], fields[1::2], strict=True)))
    await pipe.execute()


def _cpu_ns(pid: int) -> int:
    """CPU time of Redis's main thread so far (it only sleeps between our calls)."""
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0])


def _forwards(keys: Keys, held: list[Delivery]) -> list[Transition]:
    return [Transition(d.id, d.request_id, State.FORWARDED,
                       (Forward("out", d.fields[b"d"], d.request_id, 0),)) for d in held]


async def _round(redis: Redis, keys: Keys, batch: int, commits: int, n: int) -> tuple[float, float]:
    """(µs per entry of ms_commit, µs per entry of XADD + XACK) over ``commits`` batches."""
    group = GroupConsumer(redis, keys, "in", "g", "c")
    await group.ensure_group()
    committer = Committer(redis, keys, keys.stream("in"), "g", "c", "s", STATUS_TTL_MS, EVENTS_MAXLEN, batch)
    token = await committer.token()
    pid = int((await redis.info("server"))["process_id"])
    ours = raw = 0
    try:
        for k in range(commits):
            await _fill(redis, keys.stream("in"), batch, f"r{n}-{k}")
            held = await group.read_new(batch, 0)
            transitions = _forwards(keys, held)
            start = _cpu_ns(pid)
            await committer.commit(transitions, token)
            ours += _cpu_ns(pid) - start

            await _fill(redis, keys.stream("in"), batch, f"b{n}-{k}")
            held = await group.read_new(batch, 0)
            pipe = redis.pipeline(transaction=False)
            for d in held:
                pipe.xadd(keys.stream("raw"), dict(zip(d.flat[::2], d.flat[1::2], strict=True)))
            pipe.xack(keys.stream("in"), "g", *[d.id for d in held])
            start = _cpu_ns(pid)
            await pipe.execute()
            raw += _cpu_ns(pid) - start
    finally:
        await group.close()
        await committer.close()
    return ours / 1000 / (commits * batch), raw / 1000 / (commits * batch)


async def _run(url: str, batch: int, commits: int, rounds: int) -> tuple[float, float]:
    redis = Redis.from_url(url)
    await library.load(redis)
    results = []
    try:
        for n in range(1, rounds + 1):
            results.append(await _round(redis, Keys("bench", f"commit-{n}"), batch, commits, n))
            typer.echo(f"round {n}/{rounds}: ms_commit {results[-1][0]:.2f} µs/entry, "
                       f"XADD + XACK {results[-1][1]:.2f} µs/entry")
    finally:
        await redis.aclose()
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def commit(
    batch: Annotated[int, typer.Option(help="Entries per commit")] = 75,
    commits: Annotated[int, typer.Option(help="Commits per round")] = 250,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds; medians reported")] = 5,
) -> None:
    """Redis time per entry of a fenced commit (status, event) against a raw XADD + XACK."""
    with tempfile.TemporaryDirectory(prefix="millstream-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        try:
            typer.echo(f"bench commit: {rounds} rounds of {commits} commits of {batch} forwards")
            ours, raw = asyncio.run(_run(server.url, batch, commits, rounds))
        finally:
            server.stop()
    typer.echo(f"commit_us_per_entry={ours:.2f} baseline_us_per_entry={raw:.2f} ratio={ours / raw:.2f}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("commit")(commit)
