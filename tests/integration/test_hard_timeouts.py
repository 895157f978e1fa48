"""Hard timeouts: a handler stuck in blocking code that never yields, run in a KillablePool,
is stopped for real at its timeout. The entry, the slot and the memory are released, the
process is replaced, and the runner stays healthy (its heartbeat goes on, other entries flow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from streams.errors import SoftTimeout
from streams.killable import KillablePool
from streams.message import Message, Outgoing
from streams.redis.deadletters import DeadLetters, Selection
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from streams.stage import Stage
from tests.support import killable_work as work
from tests.support.pipelines import payloads, running, wait_for, xlen_at_least
from tests.support.processes import gone, marked

MIB = 1024 * 1024


class Blocking:
    """Runs its work in the pool; a task with "stuck" holds 200 MiB and blocks without yielding."""

    def __init__(self, pool: KillablePool, marker: Path, how: str, pool_timeout: float | None) -> None:
        self.pool, self.marker, self.how, self.pool_timeout = pool, marker, how, pool_timeout

    async def __call__(self, message: Message) -> list[Outgoing]:
        if message.payload.get("stuck"):
            await self.pool.run(work.stuck, self.how, str(self.marker), 200, timeout=self.pool_timeout)
        return [Outgoing({"n": message.payload["n"], "pid": await self.pool.run(work.pid)})]


async def heartbeat(redis: Redis, keys: Keys, group: str) -> Any:
    [key] = await redis.keys(keys.heartbeat(group, "*"))
    return await redis.get(key)


@pytest.mark.parametrize(("how", "stage_timeout", "pool_timeout", "error"), [
    ("spin", 1.0, None, "ProcessingTimeout"),  # the stage's watchdog cancels: the pool kills
    ("sleep", 1.0, None, "ProcessingTimeout"),
    ("spin", 30.0, 1.0, "HardTimeout"),  # the pool's own timeout
])
async def test_a_handler_stuck_in_blocking_code_releases_its_entry_slot_and_memory(
        redis: Redis, keys: Keys, settings: Settings, tmp_path: Path,
        how: str, stage_timeout: float, pool_timeout: float | None, error: str):
    publisher = Publisher(redis, keys)
    async with KillablePool(2) as pool:
        await pool.start()
        baseline, first_pids = pool.rss(), set(pool.pids)
        stage = Stage("blocking", "in", Blocking(pool, tmp_path / "m", how, pool_timeout), sinks=["out"],
                      concurrency=2, timeout=stage_timeout, max_attempts=1)
        await publisher.publish("in", {"n": -1, "stuck": True}, "stuck")
        async with running(redis, keys, stage, settings):
            victim = await marked(tmp_path / "m")
            assert pool.rss() > baseline + 190 * MIB
            beat = await heartbeat(redis, keys, "blocking")
            await publisher.publish_many("in", [({"n": i}, f"r{i}") for i in range(20)])
            await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), 20), timeout=30)
            await wait_for(lambda: _changed(redis, keys, beat), timeout=10)  # the loop was never blocked
            await wait_for(lambda: xlen_at_least(redis, keys.dlq("blocking"), 1), timeout=30)
            await pool.settled()
            await publisher.publish_many("in", [({"n": i}, f"s{i}") for i in range(20, 40)])
            await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), 40), timeout=30)
            pending = await redis.xpending(keys.stream("in"), "blocking")
        letters = [d async for d in DeadLetters(redis, keys, settings).select(Selection())]
        later = {p["pid"] for p in (await payloads(redis, keys.stream("out")))[20:]}
        assert gone(victim) and victim not in pool.pids
        assert later - first_pids, "the killed process's slot serves calls, in a fresh process"
        assert pool.rss() < baseline + 50 * MIB, (pool.rss() - baseline) / MIB
    assert [d.request_id for d in letters] == ["stuck"] and error in letters[0].last_error
    assert pending["pending"] == 0


async def _changed(redis: Redis, keys: Keys, beat: Any) -> bool:
    return await heartbeat(redis, keys, "blocking") != beat


class FallsBack:
    """Tries the slow path in the pool; at the soft timeout, answers from a cheap one instead."""

    def __init__(self, pool: KillablePool, marker: Path) -> None:
        self.pool, self.marker = pool, marker

    async def __call__(self, message: Message) -> list[Outgoing]:
        try:
            await self.pool.run(work.stuck, "spin", str(self.marker))
        except SoftTimeout as soft:
            return [Outgoing({"fallback": True, "after": soft.seconds})]
        return [Outgoing({"fallback": False})]


async def test_at_the_soft_timeout_the_pool_work_is_killed_and_the_handler_answers_otherwise(
        redis: Redis, keys: Keys, settings: Settings, tmp_path: Path):
    async with KillablePool(1) as pool:
        await pool.start()
        [before] = pool.pids
        stage = Stage("soft", "in", FallsBack(pool, tmp_path / "m"), sinks=["out"], timeout=30.0,
                      soft_timeout=0.5, max_attempts=1)
        await Publisher(redis, keys).publish("in", {"n": 1})
        async with running(redis, keys, stage, settings) as runner:
            assert runner.handling.watchdog.soft_timeout == 0.5
            await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), 1), timeout=20)
        await pool.settled()
        assert await payloads(redis, keys.stream("out")) == [{"fallback": True, "after": 0.5}]
        assert gone(before)
