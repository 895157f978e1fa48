"""tasks.clean: finished status records older than a cutoff go, page by page; the rest stay."""

from __future__ import annotations

import time

import orjson
from redis.asyncio import Redis

from streams.redis import library, tasks
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.transport import RedisTransport
from streams.settings import Settings
from streams.stage import Stage
from streams.transition import Forward, State, Transition
from tests.conformance.conftest import _noop


def value(state: str, at_ms: int, stage: str = "s") -> bytes:
    return orjson.dumps({"stage": stage, "state": state, "entry": "1-0", "at": at_ms})


async def bucket(redis: Redis, keys: Keys, settings: Settings) -> int:
    return await tasks.current_bucket(redis, keys.status_head, settings.status_ttl)


async def test_clean_removes_only_finished_records_older_than_the_cutoff(redis: Redis, keys: Keys,
                                                                         settings: Settings):
    old, new = int(time.time() * 1000) - 3_600_000, int(time.time() * 1000)
    n = await bucket(redis, keys, settings)
    await redis.hset(keys.status(n), mapping={
        "done-old": value("done", old), "failed-old": value("failed", old),
        "dead-old": value("dead_lettered", old), "retrying-old": value("retrying", old),
        "done-new": value("done", new), "queued-old": value("queued", old, "publish"),
    })

    assert await tasks.clean(redis, keys, settings.status_ttl, older_than=600) == 3

    assert sorted(k.decode() for k in await redis.hkeys(keys.status(n))) == [
        "done-new", "queued-old", "retrying-old"]


async def test_clean_walks_large_buckets_in_pages_and_removes_a_tasks_older_records_too(
    redis: Redis, keys: Keys, settings: Settings,
):
    old = int(time.time() * 1000) - 3_600_000
    n = await bucket(redis, keys, settings)
    count = 3 * tasks.PAGE + 7
    await redis.hset(keys.status(n), mapping={f"t{i}": value("done", old) for i in range(count)})
    await redis.hset(keys.status(n - 1), mapping={"t0": value("forwarded", old - 10), "other": value("queued", old)})

    assert await tasks.clean(redis, keys, settings.status_ttl, older_than=60) == count

    assert await redis.hlen(keys.status(n)) == 0
    assert await tasks.task_status(redis, keys, "t0", settings.status_ttl) is None
    assert await redis.hkeys(keys.status(n - 1)) == [b"other"]


async def test_a_record_written_again_after_it_was_read_is_kept(redis: Redis, keys: Keys, settings: Settings):
    old = int(time.time() * 1000) - 3_600_000
    n = await bucket(redis, keys, settings)
    await redis.hset(keys.status(n), "r1", value("done", old + 5))  # written since the head below was read
    stale_head = value("done", old)[:-1] + b"}"

    removed = await library.fcall(redis, "ms_forget", [keys.status(n)], [b"r1", stale_head])

    assert removed == 0 and await redis.hexists(keys.status(n), "r1")


async def test_records_committed_by_a_stage_are_cleaned_once_final(redis: Redis, keys: Keys, settings: Settings):
    await Publisher.from_settings(redis, keys, settings).publish_many("in", [({"n": i}, f"r{i}") for i in range(3)])
    stage = RedisTransport(redis, keys, settings).for_stage(Stage("s", "in", _noop, sinks=["out"]), "a")
    await stage.join()
    ds = await stage.read_new(10, 1)
    await stage.commit([Transition(ds[0].id, "r0", State.DONE, []),
                        Transition(ds[1].id, "r1", State.FORWARDED, [Forward("out", b"{}", "r1", 0)]),
                        Transition(ds[2].id, "r2", State.FAILED, [])], await stage.token())
    await stage.leave()

    # a cutoff in the future: every finished record is old enough
    assert await tasks.clean(redis, keys, settings.status_ttl, older_than=-60) == 2

    found = [await tasks.task_status(redis, keys, f"r{i}", settings.status_ttl) for i in range(3)]
    assert found[0] is None and found[2] is None
    assert found[1] is not None and found[1]["state"] == "forwarded"
    assert [r["state"] for r in found[1]["trail"]] == ["queued"]
    assert await tasks.counts(redis, keys) == {"publish": {"queued": 3}, "s": {"done": 1, "forwarded": 1,
                                                                          "failed": 1}}
