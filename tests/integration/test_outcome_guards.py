"""No entry stops a runner: whatever raises while deciding or building an outcome ends as an error record."""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from processors.legacy import ID_FIELDS as TASK_IDS
from streams.errors import InvalidPayload
from streams.message import Message, Outgoing
from streams.policy import RetryPolicy
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from streams.stage import Stage
from tests.support.pipelines import entries, payloads, running, wait_for, xlen_at_least


async def rejects(message: Message) -> list[Outgoing]:
    raise InvalidPayload("no")


async def finish(redis: Redis, keys: Keys, stage: Stage, settings: Settings, records: int) -> list[dict]:
    """Run ``stage`` (of a pipeline declaring the image task's ids) until ``records`` error records exist
    and it holds nothing; assert it is still alive."""
    async with running(redis, keys, stage, settings, id_fields=TASK_IDS) as runner:
        await wait_for(lambda: xlen_at_least(redis, keys.errors, records))
        await wait_for(lambda: _idle(redis, keys, stage))
        assert runner.started.is_set()
    return await payloads(redis, keys.errors)


async def _idle(redis: Redis, keys: Keys, stage: Stage) -> bool:
    [group] = await redis.xinfo_groups(keys.stream(stage.source))
    return group["pending"] == 0 and group["lag"] == 0


async def test_a_payload_nested_deeper_than_orjson_encodes_keeps_its_text_in_the_error_record(
    redis: Redis, keys: Keys, settings: Settings
):
    deep = '{"request_id": "r-deep", "image_id": 7, "x": ' + "[" * 300 + "]" * 300 + "}"
    await redis.xadd(keys.stream("in"), {"v": "1", "d": deep, "rid": "r-deep", "att": "1", "t0": "0"})
    await Publisher(redis, keys).publish("in", {"n": 1}, request_id="after")
    [first, after] = await finish(redis, keys, Stage("strict", "in", rejects), settings, 2)
    assert first["payload"] == {"raw": deep, "request_id": "r-deep", "image_id": "7"}
    assert first["ids"] == {"request_id": "r-deep", "image_id": "7"}
    assert (first["request_id"], first["error_message"]) == ("r-deep", "InvalidPayload: no")
    assert after["request_id"] == "after" and after["payload"] == {"n": 1}, "the runner went on"


async def test_an_entry_over_the_payload_limit_keeps_a_prefix_and_its_size(
    redis: Redis, keys: Keys, settings: Settings
):
    import dataclasses

    small = dataclasses.replace(settings, max_payload_bytes=2048)
    data = orjson.dumps({"request_id": "r-big", "pad": "y" * 5000})
    await redis.xadd(keys.stream("in"), {"v": "1", "d": data, "rid": "r-big", "att": "1", "t0": "0"})
    [record] = await finish(redis, keys, Stage("strict", "in", rejects), small, 1)
    assert record["payload"] == {"raw": data[:256].decode(), "raw_bytes": len(data), "request_id": "r-big",
                                 "image_id": None}
    [(_, fields)] = await entries(redis, keys.errors)
    assert len(fields[b"d"]) <= 2048


async def test_a_garbled_retry_history_is_replaced_and_the_entry_still_dead_lettered(
    redis: Redis, keys: Keys, settings: Settings
):
    async def flaky(message: Message) -> list[Outgoing]:
        raise RuntimeError("transient")

    await redis.xadd(keys.stream("in"), {"v": "1", "d": "{}", "rid": "r-errs", "att": "1", "t0": "0",
                                         "errs": "not json ["})
    stage = Stage("flaky", "in", flaky, max_attempts=2, retry=RetryPolicy(base=0.01, cap=0.02))
    [record] = await finish(redis, keys, stage, settings, 1)
    assert record["error_message"] == "gave up after 2 attempts: RuntimeError: transient"
    [(_, dead)] = await entries(redis, keys.dlq("flaky"))
    assert orjson.loads(dead[b"errs"]) == ["RuntimeError: transient"]


async def test_an_output_whose_request_id_cannot_travel_is_an_error_record(
    redis: Redis, keys: Keys, settings: Settings
):
    async def odd_ids(message: Message) -> list[Outgoing]:
        rid = {"surrogate": "r\ud800", "number": 5}[message.payload["kind"]]
        return [Outgoing({"ok": 1}, request_id=rid)]  # type: ignore[arg-type]

    await Publisher(redis, keys).publish_many("in", [({"kind": k}, f"r-{k}") for k in ("surrogate", "number")])
    records = await finish(redis, keys, Stage("odd", "in", odd_ids, sinks=["out"]), settings, 2)
    assert sorted(r["error_message"] for r in records) == [
        "output rejected: TypeError: an output's request_id must be text (UTF-8), got int",
        "output rejected: TypeError: an output's request_id must be text (UTF-8), got str",
    ]
    assert await redis.xlen(keys.stream("out")) == 0


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text")


async def test_an_exception_that_cannot_be_described_ends_its_entry_as_an_internal_error(
    redis: Redis, keys: Keys, settings: Settings
):
    async def raises_unprintable(message: Message) -> list[Outgoing]:
        raise Unprintable()

    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(2)])
    records = await finish(redis, keys, Stage("odd", "in", raises_unprintable), settings, 2)
    assert [r["error_message"] for r in records] == [
        f"internal error while handling entry {r['entry_id']}: ValueError: no text" for r in records]
    assert await redis.zcard(keys.delayed("in")) == 0


async def test_a_batch_processor_returning_no_sequence_ends_each_entry_as_an_internal_error(
    redis: Redis, keys: Keys, settings: Settings
):
    async def returns_a_number(messages: list[Message]) -> int:
        return 3

    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(3)])
    stage = Stage("batch", "in", returns_a_number, batched=True, batch_size=3)  # type: ignore[arg-type]
    records = await finish(redis, keys, stage, settings, 3)
    assert sorted(r["request_id"] for r in records) == ["r0", "r1", "r2"]
    assert {r["error_message"].split(": ", 1)[1] for r in records} == {"TypeError: object of type 'int' has no len()"}


async def test_an_entry_over_the_limit_that_fails_transiently_is_not_copied_into_retries(
    redis: Redis, keys: Keys, settings: Settings
):
    import dataclasses

    async def flaky(message: Message) -> list[Outgoing]:
        raise RuntimeError("transient")

    small = dataclasses.replace(settings, max_payload_bytes=1024)
    data = orjson.dumps({"pad": "z" * 70_000})
    await redis.xadd(keys.stream("in"), {"v": "1", "d": data, "rid": "r-huge", "att": "1", "t0": "0"})
    stage = Stage("flaky", "in", flaky, retry=RetryPolicy(base=0.01, cap=0.02))
    [record] = await finish(redis, keys, stage, small, 1)
    size = sum(len(k) + len(v) for k, v in {"v": "1", "d": data, "rid": "r-huge", "att": "1", "t0": "0"}.items())
    assert record["error_message"] == (
        f"RuntimeError: transient; the entry is {size} bytes, over the payload limit of 1024 bytes "
        "(MILLSTREAM_MAX_PAYLOAD_BYTES): not retried or dead-lettered")
    assert await redis.zcard(keys.delayed("in")) == 0 and await redis.xlen(keys.dlq("flaky")) == 0


async def test_a_batch_too_large_for_one_call_is_committed_in_parts_with_its_fencing(
    redis: Redis, keys: Keys, settings: Settings
):
    from streams.redis.commit import Committer
    from streams.transition import Forward, State, Transition

    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(6)])
    await redis.xgroup_create(keys.stream("in"), "g", id="0")
    held = (await redis.xreadgroup("g", "a", {keys.stream("in"): ">"}))[0][1]
    await redis.xclaim(keys.stream("in"), "g", "b", 0, [held[4][0]])
    committer = Committer(redis, keys, keys.stream("in"), "g", "a", "s", 60_000, 1000, 10, max_call_bytes=200_000)
    batch = [Transition(i.decode(), f"r{n}", State.FORWARDED, [Forward("out", b'"' + b"p" * 90_000 + b'"', f"r{n}", 0)])
             for n, (i, _) in enumerate(held)]
    verdict = await committer.commit(batch, await committer.token(), suspect=range(6))
    await committer.close()
    assert verdict.fenced == [4]
    assert [f[b"rid"] for _, f in await redis.xrange(keys.stream("out"))] == [b"r0", b"r1", b"r2", b"r3", b"r5"]
    calls = [e for _, e in await redis.xrange(keys.events) if e[b"stage"] == b"s"]
    assert len(calls) == 3, "90 kB each, 200 kB a call: two per call"
