"""KillablePool: blocking work that a timeout stops for real (its process killed and replaced),
worker processes that die or break the protocol, and a pool that leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streams.errors import (
    HardTimeout,
    PermanentError,
    RemoteError,
    RemotePermanentError,
    RetryableError,
    WorkerLost,
)
from streams.killable import KillablePool, resident_bytes
from tests.support import killable_work as work
from tests.support.pipelines import wait_for
from tests.support.processes import alive, gone_soon, marked

MIB = 1024 * 1024


@pytest.fixture
async def pool():
    async with KillablePool(1) as pool:
        await pool.start()
        yield pool


@pytest.mark.parametrize("how", ["spin", "sleep"])
async def test_work_past_its_timeout_is_killed_and_the_next_call_runs_in_a_fresh_process(pool, how):
    first = await pool.run(work.pid)
    with pytest.raises(HardTimeout) as timed_out:
        await pool.run(work.stuck, how, timeout=1.0)
    assert isinstance(timed_out.value, RetryableError) and timed_out.value.pid == first
    assert "killed and replaced" in str(timed_out.value)
    async with asyncio.timeout(30):  # the slot is free: the call does not wait behind the stuck one
        second = await pool.run(work.pid)
    assert second != first
    await pool.settled()
    assert not alive(first)


async def test_the_memory_a_killed_process_held_comes_back(pool, tmp_path):
    await pool.run(work.pid)
    baseline = pool.rss()
    stuck = asyncio.create_task(pool.run(work.stuck, "spin", str(tmp_path / "m"), 200, timeout=20))
    victim = await marked(tmp_path / "m")
    assert pool.rss() > baseline + 190 * MIB, "the stuck call holds its 200 MiB"
    stuck.cancel()  # what the stage's watchdog does at its timeout
    with pytest.raises(asyncio.CancelledError):
        await stuck
    await pool.settled()
    await pool.run(work.pid)  # the fresh process is up
    assert not alive(victim) and resident_bytes(victim) == 0
    assert pool.rss() < baseline + 20 * MIB, (pool.rss() - baseline) / MIB


async def test_cancelling_the_awaiting_task_kills_the_process(pool, tmp_path):
    call = asyncio.create_task(pool.run(work.stuck, "sleep", str(tmp_path / "m")))
    victim = await marked(tmp_path / "m")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await pool.settled()
    assert not alive(victim)
    assert await pool.run(work.add, 2, 3) == 5


async def test_a_process_that_crashes_fails_its_call_retryably_and_is_replaced(pool):
    first = await pool.run(work.pid)
    with pytest.raises(WorkerLost, match="SIGSEGV") as lost:
        await pool.run(work.crash)
    assert isinstance(lost.value, RetryableError) and lost.value.pid == first
    assert "tests.support.killable_work:crash" in str(lost.value)
    assert await pool.run(work.pid) != first


async def test_a_process_killed_from_outside_says_so(pool, tmp_path):
    call = asyncio.create_task(pool.run(work.stuck, "sleep", str(tmp_path / "m")))
    os.kill(await marked(tmp_path / "m"), signal.SIGKILL)  # as the kernel's OOM killer does
    with pytest.raises(WorkerLost, match=r"SIGKILL.*out of memory"):
        await call
    assert await pool.run(work.add, 1, 1) == 2


@pytest.mark.parametrize(("fn", "problem"), [(work.write_garbage, "malformed frame: bad magic"),
                                              (work.write_bad_result, "malformed result")])
async def test_a_malformed_reply_is_an_error_and_the_process_is_replaced(pool, fn, problem):
    first = await pool.run(work.pid)
    with pytest.raises(WorkerLost, match=problem):
        await pool.run(fn)
    assert await pool.run(work.pid) != first


async def test_what_the_function_raises_comes_back_by_name_and_the_process_lives_on(pool):
    first = await pool.run(work.pid)
    with pytest.raises(RemoteError) as failed:
        await pool.run(work.fail)
    assert (failed.value.type_name, failed.value.message) == ("ValueError", "bad input")
    assert "in fail" in failed.value.traceback and not isinstance(failed.value, PermanentError)
    with pytest.raises(RemotePermanentError, match="InvalidPayload: no such field"):
        await pool.run(work.refuse)
    assert await pool.run(work.pid) == first


async def test_arguments_and_results_cross_as_json_bytes_and_arrays(pool):
    image = np.random.default_rng(1).integers(0, 255, (2000, 790, 3), dtype=np.uint8)
    doubled = await pool.run(work.double, image.astype(np.int16))
    np.testing.assert_array_equal(doubled, image.astype(np.int16) * 2)
    assert await pool.run(work.echo, {"a": [1, "b"]}, None) == [{"a": [1, "b"]}, None]
    assert await pool.run(work.same, b"\x00\xff") == b"\x00\xff"
    with pytest.raises(TypeError):
        await pool.run(work.echo, object())  # refused before it is sent
    first = await pool.run(work.pid)
    with pytest.raises(RemoteError, match="TypeError"):  # bytes travel at the top level only
        await pool.run(work.echo, b"nested")
    assert await pool.run(work.pid) == first
    with pytest.raises(ValueError, match="module-level"):
        await pool.run(lambda: 1)


async def test_the_initializer_runs_once_in_each_process_and_processes_are_recycled(tmp_path):
    marker = tmp_path / "init"
    async with KillablePool(2, work.init_marker, [str(marker)], max_tasks_per_child=2) as pool:
        await pool.start()
        assert len(marker.read_text().split()) == 2
        pids = [await pool.run(work.pid) for _ in range(6)]
    assert len(set(pids)) >= 3, "a process serves at most two calls"
    assert all(pids.count(p) <= 2 for p in pids)
    assert len(marker.read_text().split()) >= 3


async def test_an_initializer_that_fails_fails_the_call_with_its_error():
    async with KillablePool(1, work.init_fails) as pool:
        with pytest.raises(WorkerLost, match="initializer failed: RuntimeError: model file missing"):
            await pool.run(work.pid)


async def test_closing_the_pool_ends_every_process_busy_ones_included(tmp_path):
    pool = KillablePool(2)
    await pool.start()
    busy = asyncio.create_task(pool.run(work.stuck, "spin", str(tmp_path / "m")))
    await marked(tmp_path / "m")
    pids = pool.pids
    await pool.aclose()
    assert len(pids) == 2 and not any(alive(p) for p in pids)
    with pytest.raises(WorkerLost):
        await busy
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(work.pid)


def test_worker_processes_die_with_their_parent(tmp_path):
    marker = tmp_path / "m"
    script = ("import asyncio, sys\n"
              "from streams.killable import KillablePool\n"
              "from tests.support import killable_work as work\n"
              "async def main():\n"
              "    async with KillablePool(1) as pool:\n"
              f"        await pool.run(work.stuck, 'sleep', {str(marker)!r})\n"
              "asyncio.run(main())\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    try:
        child = asyncio.run(marked(marker))
        parent.kill()  # kill -9: the pool gets no chance to close
        parent.wait(timeout=30)
        asyncio.run(wait_for(lambda: gone_soon(child), timeout=30))
    finally:
        parent.kill()
