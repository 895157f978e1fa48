"""The legacy list bridge: exactly once in from img:translate:tasks, exactly once out to the lists."""

from __future__ import annotations

import dataclasses
import uuid

import orjson
import pytest
from redis.asyncio import Redis

from processors.legacy import LegacySettings, mirror_errors, mirror_success
from streams.bridge import ListIngress
from streams.codec import decode
from streams.errors import DecodeError
from streams.redis.bridge import IngressRunner
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings, from_env
from streams.stage import Stage
from tests.support.pipelines import entries, running, wait_for


def list_name(kind: str) -> str:
    return f"test:{uuid.uuid4().hex[:8]}:{kind}"


def task(i: int) -> bytes:
    return orjson.dumps({"request_id": f"req-{i}", "image_url": f"http://img/{i}.png", "image_id": f"img-{i}",
                         "is_long": i % 2 == 0})


async def test_ingress_moves_tasks_in_the_order_blpop_saw_them(redis: Redis, keys: Keys, settings: Settings):
    source = list_name("tasks")
    await redis.rpush(source, *[task(i) for i in range(250)])
    await redis.lpush(source, task(999))  # an LPUSH producer: first out, as with BLPOP
    runner = IngressRunner(redis, keys, ListIngress("ingress", source, "tasks"), 60, 1000)
    while await runner.move_once():
        pass
    moved = await entries(redis, keys.stream("tasks"))
    assert [decode(f)[1] for _, f in moved] == ["req-999", *[f"req-{i}" for i in range(250)]]
    assert decode(moved[1][1])[0] == orjson.loads(task(0))
    assert await redis.llen(source) == 0


async def test_items_are_moved_unread_and_the_reading_stage_decodes_them(redis: Redis, keys: Keys):
    source = list_name("tasks")
    items = [b'{"request_id": "r-bad", "image_id": "i-bad", "image_url": ', b"[1, 2]", b"\xff\xfe",
             b'{"request_id": 12345678901234567890, "n": 1}', b'{"image_id": "no id"}']
    await redis.rpush(source, *items)
    await IngressRunner(redis, keys, ListIngress("ingress", source, "tasks"), 60, 1000).move_once()
    moved = [f for _, f in await entries(redis, keys.stream("tasks"))]
    assert [f[b"d"] for f in moved] == items, "exactly as pushed"
    assert {f[b"lg"] for f in moved} == {source.encode()}
    assert [f[b"rid"] for f in moved[:4]] == [b"r-bad", moved[1][b"rid"], moved[2][b"rid"], b"12345678901234567890"]
    assert moved[1][b"rid"].startswith(b"legacy-") and moved[4][b"rid"].startswith(b"legacy-")
    assert await redis.xlen(keys.errors) == 0 and await redis.llen(source) == 0
    problems = []
    for fields in moved[:3]:
        with pytest.raises(DecodeError) as caught:
            decode(fields)
        problems.append(str(caught.value))
    assert problems == [
        f"malformed task from list {source}: it is not valid JSON/UTF-8 (unexpected end of data: line 1 column 59 "
        "(char 58)); push one JSON object (UTF-8) per item",
        f"malformed task from list {source}: it is JSON but not an object (list); push one JSON object (UTF-8) "
        "per item",
        f"malformed task from list {source}: it is not valid JSON/UTF-8 (str is not valid UTF-8: surrogates not "
        "allowed: line 1 column 1 (char 0)); push one JSON object (UTF-8) per item",
    ]
    assert decode(moved[3])[:2] == ({"request_id": 12345678901234567890, "n": 1}, "12345678901234567890")
    assert decode(moved[4])[1] == moved[4][b"rid"].decode(), "no id of its own: the bridge's label"


async def test_one_call_stops_popping_once_it_moved_its_byte_budget(redis: Redis, keys: Keys):
    source = list_name("tasks")
    await redis.rpush(source, *[orjson.dumps({"request_id": f"r{i}", "pad": "x" * 99_970}) for i in range(10)])
    runner = IngressRunner(redis, keys, ListIngress("ingress", source, "tasks"), 60, 1000, max_call_bytes=250_000)
    assert [await runner.move_once() for _ in range(5)] == [3, 3, 3, 1, 0]
    assert [f[b"rid"] for _, f in await entries(redis, keys.stream("tasks"))] == [b"r%d" % i for i in range(10)]


async def test_the_largest_admissible_call_holds_redis_for_a_few_milliseconds(redis: Redis, keys: Keys):
    """The worst case: a full batch just under its byte budget before the last item, the last at the limit.

    Prints the worst of 20 calls as Redis timed it (SLOWLOG); docs/BENCHMARKS.md records it.
    """
    source, limit = list_name("tasks"), 1024 * 1024
    runner = IngressRunner(redis, keys, ListIngress("ingress", source, "tasks"), 60, 1000, limit)
    count = runner.ingress.batch
    pad = runner.max_call_bytes // (count - 1) - 30
    items = [orjson.dumps({"request_id": f"r{i}", "pad": "x" * pad}) for i in range(count - 1)]
    items.append(orjson.dumps({"request_id": "big", "pad": "x" * (limit - 40)}))
    assert runner.max_call_bytes - 500 < sum(map(len, items[:-1])) < runner.max_call_bytes
    assert len(items[-1]) <= limit
    [previous] = (await redis.config_get("slowlog-log-slower-than")).values()
    await redis.config_set("slowlog-log-slower-than", 0)
    try:
        durations = []
        for _ in range(20):
            await redis.rpush(source, *items)
            await redis.slowlog_reset()
            assert await runner.move_once() == count
            [call] = [e for e in await redis.slowlog_get(128) if b"ms_ingress" in e["command"]]
            durations.append(call["duration"])
            await redis.delete(keys.stream("tasks"))
    finally:
        await redis.config_set("slowlog-log-slower-than", previous)
    print(f"ms_ingress of {count} items, {sum(map(len, items))} bytes (the last {len(items[-1])}): worst call "
          f"{max(durations) / 1000:.2f} ms, median {sorted(durations)[10] / 1000:.2f} ms (20 runs)")
    assert max(durations) < 10_000, "a few milliseconds (10 ms allows for a loaded CI machine)"


async def test_outcomes_are_mirrored_with_exactly_the_contract_json(redis: Redis, keys: Keys, settings: Settings):
    success, hosting, error = list_name("success"), list_name("hosting"), list_name("error")
    publisher = Publisher(redis, keys)
    await publisher.publish("success", {"request_id": "r1", "image_id": "i1", "image_url": "http://h/i1.png",
                                        "extra": "not in the contract"}, request_id="r1")
    for stage in ("ocr", "results"):
        record = {"request_id": "r2", "error_message": f"failed in {stage}", "timestamp": 1700000000,
                  "stage": stage, "entry_id": "1-0", "stream": "tasks",
                  "payload": {"request_id": "r2", "image_id": "i2", "image_url": "x", "is_long": False}}
        await publisher.publish("errors", record)
    stages = [Stage("mirror-success", "success", mirror_success([success, hosting])),
              Stage("mirror-errors", "errors", mirror_errors(error, {"ocr", "operate"}))]
    async with running(redis, keys, stages[0], settings), running(redis, keys, stages[1], settings):
        await wait_for(lambda: redis.llen(error))
        await wait_for(lambda: _pending_is_zero(redis, keys.errors, "mirror-errors"))
    assert [orjson.loads(x) for x in await redis.lrange(success, 0, -1)] == [
        {"request_id": "r1", "image_id": "i1", "image_url": "http://h/i1.png"}]
    assert await redis.lrange(hosting, 0, -1) == await redis.lrange(success, 0, -1)
    assert [orjson.loads(x) for x in await redis.lrange(error, 0, -1)] == [
        {"request_id": "r2", "image_id": "i2", "error_message": "failed in ocr", "timestamp": 1700000000}]


def test_each_mirror_can_be_switched_off_by_setting():
    settings = from_env({"MILLSTREAM_LEGACY_HOSTING": "true", "MILLSTREAM_LEGACY_INGRESS": "false"})
    assert isinstance(settings, Settings)
    from streams.settings import load

    legacy = load(LegacySettings, {"MILLSTREAM_LEGACY_HOSTING": "true", "MILLSTREAM_LEGACY_INGRESS": "false"})
    assert dataclasses.astuple(legacy) == (False, True, True, True, False)


async def _pending_is_zero(redis: Redis, key: str, group: str) -> bool:
    info = await redis.xinfo_groups(key)
    return any(g["name"] == group.encode() and g["pending"] == 0 and g["lag"] == 0 for g in info)


async def test_refusing_an_item_over_the_limit_costs_a_pass_over_it_not_a_parse(redis: Redis, keys: Keys):
    """Prints what refusing costs against the producer's own RPUSH (docs/BENCHMARKS.md); 15 MB took 1.3 s."""
    source = list_name("tasks")
    runner = IngressRunner(redis, keys, ListIngress("ingress", source, "tasks"), 60, 1000)
    [previous] = (await redis.config_get("slowlog-log-slower-than")).values()
    await redis.config_set("slowlog-log-slower-than", 0)
    try:
        for size in (runner.max_item_bytes + 1, 15 * 1024 * 1024):
            calls, pushes = [], []
            for _ in range(5):
                await redis.slowlog_reset()
                await redis.rpush(source, b'{"request_id": "big", "pad": "' + b"x" * (size - 32) + b'"}')
                assert await runner.move_once() == 1
                log = await redis.slowlog_get(16)  # the function's own commands are logged too
                calls += [e["duration"] for e in log if b"ms_ingress" in e["command"]]
                pushes += [e["duration"] for e in log if e["command"].startswith(b"RPUSH")]
            print(f"refusing an item of {size} bytes: ms_ingress median {sorted(calls)[2] / 1000:.1f} ms "
                  f"(its RPUSH {sorted(pushes)[2] / 1000:.1f} ms)")
            assert sorted(calls)[2] < 500_000, "a pass over the item, not a parse of it"
    finally:
        await redis.config_set("slowlog-log-slower-than", previous)
    assert await redis.xlen(keys.stream("tasks")) == 0 and await redis.xlen(keys.errors) == 10
