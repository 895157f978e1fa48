"""A pipeline declares its task's id fields and its lists; streams assumes no image task and no list name."""

from __future__ import annotations

import orjson
import pytest

from processors.legacy import ID_FIELDS as TASK_IDS
from processors.legacy import LISTS
from streams.bridge import ListIngress
from streams.delivery import Delivery, to_delivery
from streams.engine.error_records import ErrorRecords
from streams.errors import ConfigError
from streams.message import Message
from streams.pipeline import ID_FIELDS, Pipeline
from streams.redis.keys import Keys

ORDER_IDS = ("order_id", "tenant.id")


def record(d: Delivery, id_fields: tuple[str, ...], limit: int = 4096) -> dict:
    return orjson.loads(ErrorRecords("check", "orders", limit, id_fields=id_fields).build(d, "bad").data)


def decoded(payload: dict, text: bytes) -> Delivery:
    return Delivery("1-0", [b"v", b"1", b"d", text, b"rid", b"r1"], 1, Message("1-0", "orders", payload, "r1"))


def test_a_pipeline_reports_only_the_request_id_unless_it_declares_its_id_fields() -> None:
    assert ID_FIELDS == ("request_id",) and Pipeline("p", []).id_fields == ID_FIELDS
    d = decoded({"request_id": "r1", "image_id": "i1"}, b"{}")
    assert record(d, ID_FIELDS)["ids"] == {"request_id": "r1"}, "no image_id: streams knows no image task"


def test_error_records_report_the_id_fields_the_pipeline_declares() -> None:
    d = decoded({"order_id": "o-1", "tenant.id": "t-9", "image_id": "i1"}, b"{}")
    assert record(d, ORDER_IDS)["ids"] == {"order_id": "o-1", "tenant.id": "t-9"}
    undecodable = to_delivery("orders", b"2-0", [b"v", b"1", b"d", b'{"order_id": 12345678901234567890, "x": NaN}'], 1)
    full = record(undecodable, ORDER_IDS)
    assert full["ids"] == {"order_id": "12345678901234567890", "tenant.id": None}, "read from the text as written"
    assert full["payload"] == {"raw": '{"order_id": 12345678901234567890, "x": NaN}', "order_id": "12345678901234567890",
                               "tenant.id": None}
    text = b'{"order_id": "o-2", "pad": "' + b"x" * 5000 + b'"}'
    bounded = record(to_delivery("orders", b"3-0", [b"v", b"1", b"d", text], 1), ORDER_IDS, limit=1024)["payload"]
    assert (bounded["order_id"], bounded["tenant.id"], bounded["raw_bytes"]) == ("o-2", None, len(text))


def test_the_image_pipeline_declares_request_id_and_image_id() -> None:
    d = decoded({"request_id": "r1", "image_id": 7}, b'{"request_id": "r1", "image_id": 7}')
    assert TASK_IDS == ("request_id", "image_id")
    assert record(d, TASK_IDS)["ids"] == {"request_id": "r1", "image_id": "7"}


@pytest.mark.parametrize("bad", ["", "order id", 'a"b', "a:b", "é"])
def test_an_id_field_that_cannot_travel_unescaped_is_refused_at_declaration(bad: str) -> None:
    with pytest.raises(ConfigError, match="id field"):
        Pipeline("p", [], id_fields=("request_id", bad))


def test_the_lists_of_a_pipeline_are_its_bridges_lists_and_those_it_declares() -> None:
    bridge = ListIngress("in", "jobs:queue", "tasks")
    pipeline = Pipeline("p", [], bridges=[bridge], lists=["jobs:done", "jobs:queue"])
    assert pipeline.list_keys == ("jobs:queue", "jobs:done")


def test_keys_refuse_a_namespace_that_a_declared_list_lies_in_and_nothing_else() -> None:
    lists = Pipeline("p", [], bridges=[ListIngress("in", "jobs:queue", "tasks")]).list_keys
    with pytest.raises(ConfigError, match="'jobs' collides with legacy list 'jobs:queue'"):
        Keys("jobs", "p", lists=lists)
    assert Keys("job", "p", lists=lists).prefix == "job:{p}"
    assert Keys("img", "translate").prefix == "img:{translate}", "no list name is known to streams"
    for namespace in ("img", "hosting", "ocr"):
        with pytest.raises(ConfigError, match="collides with legacy"):
            Keys(namespace, "imgtr", lists=LISTS)
