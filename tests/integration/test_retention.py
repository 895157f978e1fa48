"""Retained status and dedup records: bounded by time and by count, lookups and dedup still right."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
from redis.asyncio import Redis

from streams.redis import retention
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.tasks import KEPT, task_status
from streams.settings import Settings
from tests.support.pipelines import wait_for


def publisher(redis: Redis, keys: Keys, settings: Settings) -> Publisher:
    return Publisher.from_settings(redis, keys, settings)


async def publish_batches(redis: Redis, keys: Keys, settings: Settings, batches: int, size: int = 10,
                          enforce: bool = True) -> list[str]:
    """Publish ``batches`` batches of ``size`` tasks with ids r0, r1, ...; run the count bound after each."""
    ids = []
    for b in range(batches):
        batch = [f"r{b * size + i}" for i in range(size)]
        await publisher(redis, keys, settings).publish_many("in", [({"n": rid}, rid) for rid in batch])
        ids += batch
        if enforce:
            await retention.enforce(redis, keys, settings)
    return ids


async def retained(redis: Redis, keys: Keys) -> dict[str, int]:
    return {r.kind: r.records for r in await retention.measure(redis, keys)}


async def test_the_status_count_bound_keeps_between_eight_and_nine_ninths_dropping_the_oldest(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    bounded = dataclasses.replace(settings, status_max_records=90, dedup_max_keys=0)
    ids = await publish_batches(redis, keys, bounded, batches=30)
    kept = (await retained(redis, keys))["status"]
    assert 80 <= kept <= 90
    assert await task_status(redis, keys, ids[0], bounded.status_ttl) is None
    newest = await task_status(redis, keys, ids[-1], bounded.status_ttl)
    assert newest is not None and newest["state"] == "queued" and newest["stage"] == "publish"
    found = [await task_status(redis, keys, rid, bounded.status_ttl) is not None for rid in ids]
    assert found == [False] * (len(ids) - kept) + [True] * kept  # oldest dropped first, in order


async def test_the_dedup_count_bound_forgets_the_oldest_ids_and_still_deduplicates_recent_ones(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    bounded = dataclasses.replace(settings, dedup_max_keys=90, status_max_records=0)
    ids = await publish_batches(redis, keys, bounded, batches=30)
    assert 80 <= (await retained(redis, keys))["dedup"] <= 90
    entries = await redis.xrange(keys.stream("in"))
    first_of = {fields[b"rid"].decode(): entry.decode() for entry, fields in entries}
    again = publisher(redis, keys, bounded)
    assert await again.publish("in", {"n": "again"}, request_id=ids[-1]) == first_of[ids[-1]]
    forgotten = await again.publish("in", {"n": "again"}, request_id=ids[0])
    assert forgotten != first_of[ids[0]]
    assert await redis.xlen(keys.stream("in")) == len(ids) + 1


async def test_more_than_a_ninth_of_the_bound_between_two_runs_is_still_cut_back_to_the_bound(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    bounded = dataclasses.replace(settings, status_max_records=90, dedup_max_keys=90)
    ids = await publish_batches(redis, keys, bounded, batches=10, size=40)
    kept = await retained(redis, keys)
    assert 90 - 40 <= kept["status"] <= 90 and 90 - 40 <= kept["dedup"] <= 90
    assert await task_status(redis, keys, ids[-1], bounded.status_ttl) is not None
    assert await task_status(redis, keys, ids[-100], bounded.status_ttl) is None


async def test_without_count_bounds_every_record_within_the_ttl_is_kept(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    unbounded = dataclasses.replace(settings, status_max_records=0, dedup_max_keys=0)
    ids = await publish_batches(redis, keys, unbounded, batches=30)
    assert await retained(redis, keys) == {"status": 300, "dedup": 300, "events": 30, "errors": 0}
    assert all([await task_status(redis, keys, rid, unbounded.status_ttl) for rid in ids])


async def test_a_request_id_is_deduplicated_across_time_buckets_within_the_window(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    first = await publisher(redis, keys, settings).publish("in", {"n": 1}, request_id="again")
    opened = int(await redis.hget(keys.seen_head, "n"))
    for _ in range(KEPT - 1):  # age the current bucket by a span (window / 8): each publish opens the next
        await redis.hset(keys.seen_head, "at", int(time.time() * 1000) - int(settings.dedup_window * 1000) // 8)
        await publisher(redis, keys, settings).publish("in", {"n": 2}, request_id=f"other-{uuid.uuid4()}")
    assert int(await redis.hget(keys.seen_head, "n")) == opened + KEPT - 1
    assert await publisher(redis, keys, settings).publish("in", {"n": 3}, request_id="again") == first
    await redis.hset(keys.seen_head, "at", int(time.time() * 1000) - int(settings.dedup_window * 1000) // 8)
    await publisher(redis, keys, settings).publish("in", {"n": 4}, request_id="opens-the-tenth")
    assert await redis.exists(keys.seen(opened)) == 0  # the tenth bucket deleted the first
    assert await publisher(redis, keys, settings).publish("in", {"n": 5}, request_id="again") != first


async def test_records_older_than_the_ttl_are_gone_and_at_most_nine_buckets_exist(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    short = dataclasses.replace(settings, status_ttl=0.8, status_max_records=0)
    await publisher(redis, keys, short).publish("in", {"n": 0}, request_id="old")

    async def old_is_gone() -> bool:
        await publisher(redis, keys, short).publish("in", {"n": 1}, request_id=None)
        return await task_status(redis, keys, "old", short.status_ttl) is None

    await wait_for(old_is_gone, timeout=10)
    buckets = [k async for k in redis.scan_iter(match=keys.status_prefix + "[0-9]*")]
    assert 1 <= len(buckets) <= KEPT


async def test_a_lookup_finds_the_latest_state_after_the_next_bucket_opened(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    bounded = dataclasses.replace(settings, status_max_records=90)
    await publisher(redis, keys, bounded).publish("in", {"n": 0}, request_id="mine")
    await publish_batches(redis, keys, bounded, batches=2)  # the first bucket is full: the next opens
    await redis.hset(keys.status(int(await redis.hget(keys.status_head, "n"))), "mine",
                     b'{"stage":"s1","state":"done","entry":"1-0","at":1}')
    assert (await task_status(redis, keys, "mine", bounded.status_ttl) or {})["state"] == "done"


async def test_enforcing_the_bounds_on_a_pipeline_without_records_changes_nothing(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    assert await retention.enforce(redis, keys, settings) == (0, 0)
    assert await redis.exists(keys.status_head, keys.seen_head) == 0


@pytest.mark.parametrize("rid", [
    "head", "n", "at", "0", "-1", "1e309", "status:head", "ms:{x}:seen:1", "*", "?", "[a-z]", "a b",
    "\x00", "\x00head", "\r\n", "é", "画像", "\U0001f600", "x" * 10_000, '"', "{}", "nan",
])
async def test_hostile_request_ids_are_deduplicated_and_looked_up_like_any_other(
    redis: Redis, keys: Keys, settings: Settings, rid: str
) -> None:
    pub = publisher(redis, keys, settings)
    first = await pub.publish("in", {"n": 1}, request_id=rid)
    assert await pub.publish("in", {"n": 2}, request_id=rid) == first
    assert await redis.xlen(keys.stream("in")) == 1
    assert (await task_status(redis, keys, rid, settings.status_ttl) or {}).get("entry") == first
    assert await redis.hget(keys.seen(int(await redis.hget(keys.seen_head, "n"))), rid) == first.encode()


async def test_a_request_id_repeated_within_one_publish_call_is_added_once(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    ids = await publisher(redis, keys, settings).publish_many("in", [({"n": i}, "same") for i in range(3)])
    assert len(set(ids)) == 1 and await redis.xlen(keys.stream("in")) == 1


async def test_a_running_stage_applies_the_count_bounds_without_the_exporter(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    from streams.message import Message, Outgoing
    from streams.stage import Stage
    from tests.support.pipelines import running, xlen_at_least

    async def copy(message: Message) -> list[Outgoing]:
        return [Outgoing(message.payload)]

    bounded = dataclasses.replace(settings, status_max_records=90, dedup_max_keys=90)
    await publish_batches(redis, keys, bounded, batches=30, enforce=False)
    assert (await retained(redis, keys))["status"] == 300
    async with running(redis, keys, Stage("copy", "in", copy, sinks=["out"]), bounded):
        await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), 300))

        async def bounded_by_the_stage() -> bool:
            kept = await retained(redis, keys)
            return kept["status"] <= 90 and kept["dedup"] <= 90

        await wait_for(bounded_by_the_stage, timeout=15)


async def test_an_error_stream_no_stage_reads_is_capped_and_one_with_a_group_is_not(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    from streams.errors import InvalidPayload
    from streams.message import Message, Outgoing
    from streams.stage import Stage
    from tests.support.pipelines import running

    async def refuse(message: Message) -> list[Outgoing]:
        raise InvalidPayload("refused on purpose")

    capped = dataclasses.replace(settings, errors_max_len=50)
    await publish_batches(redis, keys, capped, batches=20, enforce=False)  # 200 tasks, 200 errors
    async with running(redis, keys, Stage("refuse", "in", refuse), capped):
        await wait_for(lambda: _xlen_is(redis, keys.errors, 50), timeout=20)
    await redis.xgroup_create(keys.errors, "reader", id="0")
    more = [({"n": i}, f"more-{i}") for i in range(50)]
    await publisher(redis, keys, capped).publish_many("in", more)
    async with running(redis, keys, Stage("refuse", "in", refuse), capped):
        await wait_for(lambda: _xlen_is(redis, keys.errors, 100), timeout=20)
        await redis.xadd(keys.stream("in"), {"v": "1"})  # one more cycle of trims: still 100 (+1 error)
        await wait_for(lambda: _xlen_is(redis, keys.errors, 101), timeout=20)


async def _xlen_is(redis: Redis, key: str, n: int) -> bool:
    return await redis.xlen(key) == n
