"""Dead-letter tooling: selection, replay (idempotent, concurrent-safe, editable), purge, audit."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import orjson
from redis.asyncio import Redis

from streams.message import Message, Outgoing
from streams.redis.deadletters import DeadLetters, Selection
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from streams.stage import Stage
from tests.support.pipelines import payloads, running, wait_for


class Flaky:
    """Fails payloads with "bad": true while ``broken``; the fix is deployed by clearing it."""

    def __init__(self) -> None:
        self.broken = True

    async def __call__(self, message: Message) -> list[Outgoing]:
        if self.broken and message.payload.get("bad"):
            raise RuntimeError(f"cannot handle item {message.payload['n']}")
        return [Outgoing(message.payload)]


async def dead_letters_of(redis: Redis, keys: Keys, settings: Settings, processor: Flaky,
                          count: int = 6) -> DeadLetters:
    """Items 0..count-1, odd ones bad: they end in the DLQ of stage "work"."""
    items = [({"n": i, "bad": i % 2 == 1}, f"r{i}") for i in range(count)]
    await Publisher(redis, keys).publish_many("in", items)
    async with running(redis, keys, Stage("work", "in", processor, sinks=["out"], max_attempts=1), settings):
        await wait_for(lambda: _len_is(redis, keys.dlq("work"), count // 2))
        await wait_for(lambda: _len_is(redis, keys.stream("out"), count - count // 2))
    return DeadLetters(redis, keys, settings)


async def test_filters_select_exactly_the_intended_letters(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky())
    everything = [d async for d in dl.select(Selection())]
    assert sorted(d.request_id for d in everything) == ["r1", "r3", "r5"]
    assert [d.request_id async for d in dl.select(Selection(request_id="r3"))] == ["r3"]
    assert [d.request_id async for d in dl.select(Selection(reason="item 5$"))] == ["r5"]
    assert [d.request_id async for d in dl.select(Selection(reason="timeout"))] == []
    assert len([d async for d in dl.select(Selection(reason=r"gave up after 1 attempts"))]) == 3
    assert [d async for d in dl.select(Selection(stage="other"))] == []
    assert [d async for d in dl.select(Selection(until=time.time() - 3600))] == []
    assert len([d async for d in dl.select(Selection(since=time.time() - 60))]) == 3
    letter = everything[0]
    assert (letter.stage, letter.group, letter.attempts) == ("work", "work", 1)
    assert letter.source == keys.stream("in") and letter.last_error.startswith("RuntimeError: cannot handle")


async def test_listing_pages_through_everything_with_a_cursor(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky(), count=10)
    first = await dl.page(Selection(), limit=2)
    second = await dl.page(Selection(), limit=2, after=first.next_cursor)
    last = await dl.page(Selection(), limit=2, after=second.next_cursor)
    assert (first.total, second.total, last.total) == (5, 3, 1)
    assert last.next_cursor is None
    ids = [d.id for page in (first, second, last) for d in page.letters]
    assert len(set(ids)) == 5


async def test_replayed_letters_are_processed_again_and_a_second_replay_adds_nothing(
    redis: Redis, keys: Keys, settings: Settings
):
    processor = Flaky()
    dl = await dead_letters_of(redis, keys, settings, processor)
    processor.broken = False  # the fix is deployed
    report = await dl.replay(Selection())
    assert (report.matched, report.done) == (3, 3)
    again = await dl.replay(Selection())
    assert (again.matched, again.done) == (0, 0)
    async with running(redis, keys, Stage("work", "in", processor, sinks=["out"]), settings):
        await wait_for(lambda: _len_is(redis, keys.stream("out"), 6))
    assert sorted(p["n"] for p in await payloads(redis, keys.stream("out"))) == list(range(6))
    [entry] = await dl.audit(5)
    detail = orjson.loads(entry["detail"])
    assert entry["action"] == "replay" and entry["count"] == "3" and detail["operator"] == settings.operator


async def test_two_concurrent_replays_enqueue_each_letter_once(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky(), count=40)
    before = await redis.xlen(keys.stream("in"))
    a, b = await asyncio.gather(dl.replay(Selection()), dl.replay(Selection()))
    assert a.done + b.done == 20
    assert await redis.xlen(keys.stream("in")) - before == 20
    assert await redis.xlen(keys.dlq("work")) == 0


async def test_edit_applies_a_merge_patch_and_keeps_the_request_id(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky())
    await dl.replay(Selection(request_id="r1"), patch={"bad": None, "fixed": True})
    [(_, fields)] = await redis.xrevrange(keys.stream("in"), count=1)
    assert orjson.loads(fields[b"d"]) == {"n": 1, "fixed": True}
    assert fields[b"rid"] == b"r1" and fields[b"att"] == b"1"


async def test_dry_run_changes_nothing(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky())
    length = await redis.xlen(keys.stream("in"))
    report = await dl.replay(Selection(), dry_run=True)
    assert report.done == 3 and report.targets == {keys.stream("in"): 3}
    assert await redis.xlen(keys.dlq("work")) == 3 and await redis.xlen(keys.stream("in")) == length
    assert await dl.audit() == []


async def test_replay_to_another_stage_uses_that_stages_source(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky())
    await redis.xgroup_create(keys.stream("review"), "manual", id="0", mkstream=True)
    report = await dl.replay(Selection(), to_stage="manual", limit=2)
    assert report.targets == {keys.stream("review"): 2}
    assert await redis.xlen(keys.stream("review")) == 2 and await redis.xlen(keys.dlq("work")) == 1


async def test_purge_removes_only_what_matches(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky())
    report = await dl.purge(Selection(request_id="r3"))
    assert report.done == 1
    assert sorted([d.request_id async for d in dl.select(Selection())]) == ["r1", "r5"]
    assert (await dl.audit(1))[0]["action"] == "purge"


async def test_retention_trims_dead_letters_by_count_when_configured(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky())
    assert await DeadLetters(redis, keys, settings).apply_retention("work") == 0, "default keeps all"
    capped = DeadLetters(redis, keys, dataclasses.replace(settings, dlq_max_len=1))
    assert await capped.apply_retention("work") == 2
    assert [d.request_id async for d in dl.select(Selection())] == ["r5"]


async def _len_is(redis: Redis, key: str, n: int) -> bool:
    return int(await redis.xlen(key)) == n
