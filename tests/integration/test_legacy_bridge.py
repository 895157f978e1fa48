"""The legacy list bridge: exactly once in from img:translate:tasks, exactly once out to the lists."""

from __future__ import annotations

import dataclasses
import uuid

import orjson
from redis.asyncio import Redis

from streams.codec import decode
from streams.keys import Keys
from streams.legacy import IngressRunner, LegacySettings, ListIngress, mirror_errors, mirror_success
from streams.redis.publisher import Publisher
from streams.settings import Settings, from_env
from streams.stage import Stage
from tests.support.pipelines import entries, payloads, running, wait_for


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


async def test_malformed_tasks_become_error_records_with_the_ids_that_could_be_read(
    redis: Redis, keys: Keys, settings: Settings
):
    source = list_name("tasks")
    await redis.rpush(source, b'{"request_id": "r-bad", "image_id": "i-bad", "image_url": ', b"[1, 2]", b"\xff\xfe")
    await IngressRunner(redis, keys, ListIngress("ingress", source, "tasks"), 60, 1000).move_once()
    errors = await payloads(redis, keys.errors)
    assert [(e["request_id"], e["payload"]["image_id"]) for e in errors] == [("r-bad", "i-bad"), (None, None),
                                                                             (None, None)]
    assert all("malformed task" in e["error_message"] and "push a JSON object" in e["error_message"]
               for e in errors)
    assert "JSON but not an object" in errors[1]["error_message"]
    assert await redis.xlen(keys.stream("tasks")) == 0


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
