"""`millstream top` shows each stage's figures as Redis holds them, and its throughput."""

from __future__ import annotations

import asyncio
import time
import uuid

import typer
from redis.asyncio import Redis
from typer.testing import CliRunner

from streams.cli import top
from streams.redis.consumer import GroupConsumer
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("other")(lambda: None)  # with one command typer would make it the whole app
    top.register(app)
    return app


async def _stage_with_backlog(redis: Redis, keys: Keys) -> GroupConsumer:
    """12 entries in "in": 4 read by stage "work" (1 acked, 3 pending), 8 not read yet;
    1 consumer alive of 2, 2 dead letters, 1 delayed retry."""
    await Publisher(redis, keys).publish_many("in", [({"n": i}, None) for i in range(12)])
    group = GroupConsumer(redis, keys, "in", "work", "c1")
    await group.ensure_group()
    delivered = await group.read_new(4, 0)
    await redis.xack(keys.stream("in"), "work", delivered[0].id)
    await redis.xgroup_createconsumer(keys.stream("in"), "work", "c2")  # no heartbeat: not live
    await redis.set(keys.heartbeat("work", "c1"), int(time.time() * 1000), px=5000)
    for n in range(2):
        await redis.xadd(keys.dlq("work"), {"reason": f"r{n}"})
    await redis.zadd(keys.delayed("in"), {"retry-1": time.time() * 1000 + 60_000})
    return group


async def test_top_once_prints_the_figures_of_every_stage(redis: Redis, settings: Settings):
    keys = Keys(f"top{uuid.uuid4().hex[:8]}", "imgtr")
    await _stage_with_backlog(redis, keys)
    env = {"MILLSTREAM_REDIS_URL": settings.redis_url, "MILLSTREAM_NAMESPACE": keys.namespace}
    done = await asyncio.to_thread(CliRunner().invoke, _app(), ["top", "--once", "--interval", "0.1"], env=env)
    assert done.exit_code == 0, done.output
    [row] = [line for line in done.output.splitlines() if "imgtr" in line]
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    # pipeline, stream, stage, lag, lag s, pending, delayed, consumers, dead, entries/s
    assert cells[:3] == ["imgtr", "in", "work"]
    assert (cells[3], cells[5], cells[6], cells[7], cells[8]) == ("8", "3", "1", "1/2", "2")
    assert float(cells[4]) < 60 and float(cells[9]) == 0.0  # nothing read between the two samples


async def test_top_once_says_when_no_stage_exists(settings: Settings):
    env = {"MILLSTREAM_REDIS_URL": settings.redis_url, "MILLSTREAM_NAMESPACE": f"none{uuid.uuid4().hex[:8]}"}
    done = await asyncio.to_thread(CliRunner().invoke, _app(), ["top", "--once", "--interval", "0.05"], env=env)
    assert done.exit_code == 0, done.output
    assert "no stages found" in done.output


async def test_throughput_is_the_entries_read_between_two_samples_per_second(redis: Redis):
    keys = Keys(f"top{uuid.uuid4().hex[:8]}", "imgtr")
    group = await _stage_with_backlog(redis, keys)
    before = await top.take(redis, keys.namespace)
    assert before.entries_read() == {("imgtr", "in", "work"): 4}
    await group.read_new(5, 0)
    after = await top.take(redis, keys.namespace)
    rates = top.throughput(before, after)
    assert rates == {("imgtr", "in", "work"): 5 / (after.at - before.at)}
