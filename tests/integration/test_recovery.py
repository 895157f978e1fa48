"""Claiming from dead consumers, crash-loop quarantine, and consumer clean-up."""

from __future__ import annotations

from redis.asyncio import Redis

from streams.message import Message, Outgoing
from streams.redis.consumer import GroupConsumer
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from streams.stage import Stage
from tests.support.pipelines import entries, payloads, running, wait_for, xlen_at_least


async def blocked_readers(redis: Redis) -> list[str]:
    return [c["id"] for c in await redis.client_list() if c["cmd"] == "xreadgroup" and "b" in c["flags"]]


async def copy(message: Message) -> list[Outgoing]:
    return [Outgoing(message.payload)]


async def deliver_to_ghosts(redis: Redis, keys: Keys, ghosts: int) -> None:
    """Deliver every entry of "in" to ``ghosts`` consumers in turn that never heartbeat (they died)."""
    group = GroupConsumer(redis, keys, "in", "copy", "ghost-0")
    await group.ensure_group()
    await group.read_new(100, 0)
    for n in range(1, ghosts):
        pending = await redis.xpending_range(keys.stream("in"), "copy", "-", "+", 100)
        ids = [p["message_id"] for p in pending]
        await redis.xclaim(keys.stream("in"), "copy", f"ghost-{n}", 0, ids)


async def test_entry_whose_consumers_kept_dying_is_quarantined(redis: Redis, keys: Keys, settings: Settings):
    await Publisher(redis, keys).publish("in", {"n": 1}, request_id="poison")
    await deliver_to_ghosts(redis, keys, ghosts=3)
    async with running(redis, keys, Stage("copy", "in", copy, sinks=["out"], crash_limit=3), settings):
        await wait_for(lambda: redis.xlen(keys.dlq("copy")))
    [(_, dead)] = await entries(redis, keys.dlq("copy"))
    assert dead[b"reason"].startswith(b"crash loop: delivered 4 times")
    assert dead[b"deliveries"] == b"4"
    assert await redis.xlen(keys.stream("out")) == 0
    assert [e["request_id"] for e in await payloads(redis, keys.errors)] == ["poison"]


async def test_entry_of_a_consumer_that_died_once_is_processed_normally(
    redis: Redis, keys: Keys, settings: Settings
):
    await Publisher(redis, keys).publish("in", {"n": 1})
    await deliver_to_ghosts(redis, keys, ghosts=1)
    async with running(redis, keys, Stage("copy", "in", copy, sinks=["out"]), settings):
        await wait_for(lambda: redis.xlen(keys.stream("out")))
        consumers = await GroupConsumer(redis, keys, "in", "copy", "x").consumers()
    assert consumers == ["c-main"], "the emptied dead consumer is deleted"


async def test_consumer_with_a_live_heartbeat_keeps_its_entries(redis: Redis, keys: Keys):
    await Publisher(redis, keys).publish("in", {"n": 1})
    await deliver_to_ghosts(redis, keys, ghosts=1)
    await redis.set(keys.heartbeat("copy", "ghost-0"), 1, px=10_000)
    me = GroupConsumer(redis, keys, "in", "copy", "me")
    assert await me.claim_dead("ghost-0", 10) == []
    assert await me.claim_stale(60_000, 10) == []
    assert "ghost-0" in await me.consumers()


async def test_own_pending_entries_are_read_first_after_a_restart(redis: Redis, keys: Keys, settings: Settings):
    await Publisher(redis, keys).publish_many("in", [({"n": i}, None) for i in range(3)])
    group = GroupConsumer(redis, keys, "in", "copy", settings.consumer)
    await group.ensure_group()
    held = await group.read_new(2, 0)  # read, then "crashed" before committing
    await Publisher(redis, keys).publish("in", {"n": 3})
    async with running(redis, keys, Stage("copy", "in", copy, sinks=["out"], batch_size=1), settings):
        await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), 4))
    out = await payloads(redis, keys.stream("out"))
    assert [p["n"] for p in out[:2]] == [d.message.payload["n"] for d in held if d.message]


async def test_entries_of_a_read_whose_reply_was_lost_are_processed_before_their_deadline(
    redis: Redis, keys: Keys, settings: Settings
):
    admin = Redis.from_url(settings.redis_url)
    async with running(redis, keys, Stage("copy", "in", copy, sinks=["out"], deadline=600), settings):
        [reader] = await wait_for(lambda: blocked_readers(admin))
        await admin.client_kill_filter(_id=reader)  # the reader's connection drops
        # What a reply lost with it leaves: entries delivered to this consumer, unknown to it.
        await Publisher(admin, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(5)])
        await admin.xreadgroup("copy", settings.consumer, {keys.stream("in"): ">"}, count=5)

        await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), 5), timeout=10)
    assert sorted(p["n"] for p in await payloads(redis, keys.stream("out"))) == [0, 1, 2, 3, 4]
    assert (await redis.xpending(keys.stream("in"), "copy"))["pending"] == 0
    await admin.aclose()
