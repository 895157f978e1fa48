"""A bridge refusal and an error record carry the id fields the pipeline declares, through ms_ingress and a worker."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import orjson
import redis as sync_redis
from redis.asyncio import Redis

from processors.legacy import ID_FIELDS as TASK_IDS
from streams.bridge import ListIngress
from streams.errors import InvalidPayload
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis.bridge import IngressRunner
from streams.redis.keys import Keys
from streams.settings import Settings
from streams.stage import Stage
from tests.support.pipelines import payloads
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess, wait_until

ORDER_IDS = ("order_id", "trace-id", "a.b")  # '-' and '.' are pattern characters in Lua: escaped by ms_ingress


def list_name() -> str:
    return f"test:{uuid.uuid4().hex[:8]}:orders"


async def refused(redis: Redis, keys: Keys, item: bytes, **options: object) -> dict:
    source = list_name()
    await redis.rpush(source, item)
    runner = IngressRunner(redis, keys, ListIngress("orders-in", source, "tasks"), 60, 1000, 100, **options)
    assert await runner.move_once() == 1 and await redis.xlen(keys.stream("tasks")) == 0
    [record] = await payloads(redis, keys.errors)
    return record


async def test_a_refused_item_reports_the_id_fields_its_pipeline_declares(redis: Redis, keys: Keys):
    item = (b'{"aXb": "decoy", "order_id": 42, "traceid": "decoy", "trace-id": "t-1", "a.b": "ab", '
            b'"image_id": "i-1", "pad": "' + b"x" * 200 + b'"}')
    record = await refused(redis, keys, item, id_fields=ORDER_IDS)
    assert record["ids"] == {"order_id": "42", "trace-id": "t-1", "a.b": "ab"}
    assert {k: v for k, v in record["payload"].items() if k not in ("raw", "raw_bytes")} == record["ids"]
    assert record["payload"]["raw_bytes"] == len(item)


async def test_a_refused_item_of_a_pipeline_declaring_no_id_fields_reports_its_request_id_only(
    redis: Redis, keys: Keys
):
    record = await refused(redis, keys, b'{"request_id": "r1", "image_id": "i1", "pad": "' + b"x" * 200 + b'"}')
    assert record["ids"] == {"request_id": "r1"} and "image_id" not in record["payload"]


async def test_the_image_pipeline_refusal_record_is_byte_for_byte_what_it_was(redis: Redis, keys: Keys):
    source = list_name()
    await redis.rpush(source, b'{"request_id": "r1", "image_id": 7, "pad": "' + b"x" * 60 + b'"}')
    runner = IngressRunner(redis, keys, ListIngress("legacy-ingress", source, "tasks"), 60, 1000, 100,
                           id_fields=TASK_IDS)
    await runner.move_once()
    [(_, fields)] = await redis.xrange(keys.errors)
    data = re.sub(rb'"timestamp":\d+', b'"timestamp":T', fields[b"d"])
    assert data == (  # as written by the library before the id fields were declared (commit 3ffa060)
        b'{"error_message":"task refused from list ' + source.encode() + b': it is 106 bytes, over the limit of '
        b'100 bytes (MILLSTREAM_MAX_PAYLOAD_BYTES); store large data elsewhere and send a reference",'
        b'"stream":"' + source.encode() + b'","payload":{"raw":"{\\"request_id\\": \\"r1\\", \\"image_id\\": 7, '
        b'\\"pad\\": \\"' + b"x" * 60 + b'\\"}","image_id":"7","request_id":"r1","raw_bytes":106},'
        b'"entry_id":null,"ids":{"image_id":"7","request_id":"r1"},"timestamp":T,"stage":"legacy-ingress",'
        b'"request_id":"r1"}')


def orders(settings: Settings) -> Pipeline:
    """A worker factory: list MSTEST_LIST -> "tasks" -> a stage refusing every task; ids ORDER_IDS."""

    async def refuse(message: Message) -> list[Outgoing]:
        raise InvalidPayload("no orders today")

    lists = [os.environ["MSTEST_DONE_LIST"]] if "MSTEST_DONE_LIST" in os.environ else []
    return Pipeline(os.environ["MSTEST_PIPELINE"], [Stage("check", "tasks", refuse)], id_fields=ORDER_IDS,
                    bridges=[ListIngress("orders-in", os.environ["MSTEST_LIST"], "tasks")], lists=lists)


def test_a_worker_gives_its_pipelines_id_fields_to_the_bridge_and_to_error_records(
    redis_server: RedisServer, pipeline_name: str, keys: Keys, tmp_path: Path
):
    source, client = list_name(), sync_redis.Redis.from_url(redis_server.url)
    client.rpush(source, orjson.dumps({"order_id": "o-small", "trace-id": "t-small", "request_id": "r-small"}),
                 b'{"order_id": "o-big", "a.b": 1.5, "pad": "' + b"x" * 2000 + b'"}')
    worker = WorkerProcess(redis_server.url, pipeline_name, "orders-1", tmp_path, MSTEST_LIST=source,
                           factory="tests.integration.test_bridge_id_fields:orders", MILLSTREAM_MAX_PAYLOAD_BYTES="1024")
    try:
        wait_until(lambda: client.xlen(keys.errors) >= 2, timeout=30)
    finally:
        worker.ensure_stopped()
        client.close()
    records = [orjson.loads(f[b"d"]) for _, f in sync_redis.Redis.from_url(redis_server.url).xrange(keys.errors)]
    by_stage = {r["stage"]: r for r in records}
    assert by_stage["orders-in"]["ids"] == {"order_id": "o-big", "trace-id": None, "a.b": "1.5"}
    assert by_stage["check"]["ids"] == {"order_id": "o-small", "trace-id": "t-small", "a.b": None}
    assert by_stage["check"]["error_message"] == "InvalidPayload: no orders today"


def test_a_worker_refuses_a_namespace_that_a_list_of_its_pipeline_lies_in(
    redis_server: RedisServer, pipeline_name: str, tmp_path: Path
):
    worker = WorkerProcess(redis_server.url, pipeline_name, "orders-2", tmp_path, MSTEST_LIST=list_name(),
                           MSTEST_DONE_LIST="mst:orders:done", factory="tests.integration.test_bridge_id_fields:orders")
    try:
        assert worker.wait(30) != 0
    finally:
        worker.ensure_stopped()
    assert "'mst' collides with legacy list 'mst:orders:done'" in worker.log()
