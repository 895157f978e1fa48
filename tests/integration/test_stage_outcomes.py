"""A stage's outcomes on a real Redis: forward, retry, error record, dead letter."""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from processors.legacy import ID_FIELDS as TASK_IDS
from streams.errors import InvalidPayload
from streams.message import Message, Outgoing
from streams.policy import RetryPolicy
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.tasks import task_status
from streams.settings import Settings
from streams.stage import Stage
from tests.support.pipelines import entries, payloads, running, wait_for, xlen_at_least


async def double(message: Message) -> list[Outgoing]:
    return [Outgoing({"n": message.payload["n"] * 2})]


async def test_each_input_is_forwarded_once_and_acknowledged(redis: Redis, keys: Keys, settings: Settings):
    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(50)])
    stage = Stage("double", "in", double, sinks=["out"], concurrency=4, batch_size=10)
    async with running(redis, keys, stage, settings):
        await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), 50))
    assert sorted(p["n"] for p in await payloads(redis, keys.stream("out"))) == [2 * i for i in range(50)]
    assert (await redis.xpending(keys.stream("in"), "double"))["pending"] == 0
    out_rids = sorted(f[b"rid"].decode() for _, f in await entries(redis, keys.stream("out")))
    assert out_rids == sorted(f"r{i}" for i in range(50))
    status = await task_status(redis, keys, "r7", settings.status_ttl)
    assert status is not None and status["stage"] == "double" and status["state"] == "forwarded"
    events = [orjson.loads(f[b"t"]) for _, f in await entries(redis, keys.events)]
    states = [(rid, state) for batch in events for rid, state, _ in batch if rid == "r7"]
    assert states == [("r7", "queued"), ("r7", "forwarded")]


async def test_request_ids_needing_json_escapes_are_recorded_exactly(
    redis: Redis, keys: Keys, settings: Settings
):
    odd = ['quote"d', "back\\slash", "tab\tand\nnewline", "ctl\x01", "ünï/cödé"]
    await Publisher(redis, keys).publish_many("in", [({"n": i}, rid) for i, rid in enumerate(odd)])
    async with running(redis, keys, Stage("double", "in", double, sinks=["out"]), settings):
        await wait_for(lambda: xlen_at_least(redis, keys.stream("out"), len(odd)))
    events = [orjson.loads(f[b"t"]) for _, f in await entries(redis, keys.events)]
    forwarded = [rid for batch in events for rid, state, _ in batch if state == "forwarded"]
    assert sorted(forwarded) == sorted(odd)
    for rid in odd:
        status = await task_status(redis, keys, rid, settings.status_ttl)
        assert status is not None and status["state"] == "forwarded", rid


async def test_repeated_request_id_returns_first_entry_and_adds_nothing(redis: Redis, keys: Keys):
    publisher = Publisher(redis, keys)
    first = await publisher.publish("in", {"n": 1}, request_id="req-1")
    again = await publisher.publish("in", {"n": 2}, request_id="req-1")
    assert again == first
    assert await redis.xlen(keys.stream("in")) == 1


async def test_failing_entry_is_retried_then_dead_lettered_with_provenance(
    redis: Redis, keys: Keys, settings: Settings
):
    attempts: list[int] = []

    async def always_fails(message: Message) -> list[Outgoing]:
        attempts.append(message.attempt)
        raise RuntimeError("boom")

    await Publisher(redis, keys).publish("in", {"n": 1}, request_id="r1")
    stage = Stage("fails", "in", always_fails, sinks=["out"], max_attempts=3,
                  retry=RetryPolicy(base=0.01, cap=0.05))
    async with running(redis, keys, stage, settings):
        await wait_for(lambda: redis.xlen(keys.dlq("fails")))
        await wait_for(lambda: redis.xlen(keys.errors))
    assert attempts == [1, 2, 3]
    [(_, dead)] = await entries(redis, keys.dlq("fails"))
    assert dead[b"source"] == keys.stream("in").encode() and dead[b"group"] == b"fails"
    assert dead[b"attempts"] == b"3" and dead[b"consumer"] == b"c-main"
    assert dead[b"last_error"] == b"RuntimeError: boom"
    assert b"gave up after 3 attempts" in dead[b"reason"]
    assert len(orjson.loads(dead[b"errs"])) == 2
    [error] = await payloads(redis, keys.errors)
    assert error["request_id"] == "r1" and error["stage"] == "fails" and error["payload"] == {"n": 1}
    assert await redis.xlen(keys.stream("out")) == 0


async def test_permanent_error_is_an_error_record_without_retry(redis: Redis, keys: Keys, settings: Settings):
    async def rejects(message: Message) -> list[Outgoing]:
        raise InvalidPayload("field 'image_url' is missing")

    await Publisher(redis, keys).publish("in", {"n": 1}, request_id="r2")
    async with running(redis, keys, Stage("strict", "in", rejects), settings):
        await wait_for(lambda: redis.xlen(keys.errors))
    [error] = await payloads(redis, keys.errors)
    assert error["error_message"] == "InvalidPayload: field 'image_url' is missing"
    assert isinstance(error["timestamp"], int) and error["entry_id"]
    assert await redis.zcard(keys.delayed("in")) == 0 and await redis.xlen(keys.dlq("strict")) == 0


async def test_undecodable_entry_becomes_error_record_and_worker_goes_on(
    redis: Redis, keys: Keys, settings: Settings
):
    await redis.xadd(keys.stream("in"), {"garbage": "yes"})
    await redis.xadd(keys.stream("in"), {"v": "1", "d": "{not json", "rid": "bad-json"})
    await Publisher(redis, keys).publish("in", {"n": 5})
    async with running(redis, keys, Stage("double", "in", double, sinks=["out"]), settings, id_fields=TASK_IDS):
        await wait_for(lambda: redis.xlen(keys.stream("out")))
        await wait_for(lambda: xlen_at_least(redis, keys.errors, 2))
    errors = await payloads(redis, keys.errors)
    assert [e["request_id"] for e in errors][1] == "bad-json"
    assert all("undecodable entry" in e["error_message"] for e in errors)
    assert errors[0]["payload"] == {"raw": {"garbage": "yes"}, "request_id": None, "image_id": None}
    assert await payloads(redis, keys.stream("out")) == [{"n": 10}]
