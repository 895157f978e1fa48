"""Hostile legacy tasks: each kind ends as exactly one img:translate:error entry, and the stage goes on.

Every item goes through the image pipeline's real task path (tests/support/legacy_stack.py):
the bridge, the ocr stage (validation, fetch), and the legacy-error mirror. Each row
asserts the exact outcome: the ids the error list carries (as written in the task's
own text) and the error message, and that nothing else was written.
"""

from __future__ import annotations

import re

import orjson
import pytest
from redis.asyncio import Redis

from streams.redis.keys import Keys
from streams.settings import Settings
from tests.support.legacy_stack import legacy_stack

LIMIT = 4096  # the payload limit of these tests (Settings.max_payload_bytes)
SHAPE = re.escape("a task is {request_id: string, image_url: string, image_id: string, is_long: boolean}")
BAD_JSON = r"undecodable entry \d+-\d+: malformed task from list test:\w+:tasks: it is not valid JSON/UTF-8 " \
           r"\((?P<why>.+)\); push one JSON object \(UTF-8\) per item"
NOT_OBJECT = r"undecodable entry \d+-\d+: malformed task from list test:\w+:tasks: it is JSON but not an " \
             r"object \((?P<kind>\w+)\); push one JSON object \(UTF-8\) per item"


def task(rid: str = '"r1"', iid: str = '"i1"', url: str = '"ftp://h/x.png"', extra: str = "") -> bytes:
    """A task written as text, so that each part can be anything a producer might write."""
    return f'{{"request_id": {rid}, "image_id": {iid}, "image_url": {url}, "is_long": false{extra}}}'.encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def invalid(problem: str) -> str:
    return re.escape(f"InvalidPayload: invalid task: {problem}; ") + SHAPE


UNSUPPORTED = re.escape("UnsupportedScheme: ") + r".*ftp.*"

# (kind, item, request_id, image_id, error message pattern, pattern of the orjson/Python detail)
CASES = [
    ("truncated JSON", b'{"request_id": "r-cut", "image_id": "i-cut", "image_url": ', "r-cut", "i-cut",
     BAD_JSON, "unexpected end of data: .*"),
    ("a JSON array, not an object", b"[1, 2]", None, None, NOT_OBJECT, "list"),
    ("a JSON string, not an object", b'"request_id"', None, None, NOT_OBJECT, "str"),
    ("JSON null", b"null", None, None, NOT_OBJECT, "NoneType"),
    ("an empty item", b"", None, None, BAD_JSON, "Input is a zero-length, empty document: .*"),
    ("invalid UTF-8", b"\xff\xfe", None, None, BAD_JSON, "str is not valid UTF-8: .*"),
    ("invalid UTF-8 inside a string", task(iid='"i-X("').replace(b"X", b"\xc3"), "r1", "i-\ufffd(", BAD_JSON,
     "str is not valid UTF-8: .*"),
    ("NaN in an extra field", task('"r-nan"', '"i-nan"', extra=', "score": NaN'), "r-nan", "i-nan",
     BAD_JSON, "unexpected character, expected a JSON value: .*"),
    ("Infinity in an extra field", task('"r-inf"', extra=', "score": -Infinity'), "r-inf", "i1",
     BAD_JSON, "no digit after sign: .*"),
    ("a hex number as image_id", task('"r-hex"', "0x1F"), "r-hex", "0x1F", BAD_JSON,
     "unexpected character, expected ',' or '}': .*"),
    ("a raw control character in a string", task('"r-\x01ctl"'), "r-\x01ctl", "i1", BAD_JSON,
     "unexpected control character in string: .*"),
    ("a lone surrogate escape in request_id", task('"r\\ud800"'), "r\ufffd", "i1", BAD_JSON,
     "no low surrogate in string: .*"),
    ("a number over 64 bits with NaN", task("123456789012345678901234567890", extra=', "x": NaN'),
     "123456789012345678901234567890", "i1", BAD_JSON, "unexpected character, expected a JSON value: .*"),
    ("a large integer request_id", task("12345678901234567890"), "12345678901234567890", "i1",
     invalid("field 'request_id' must be a string, got number"), None),
    ("a request_id over 64 bits (orjson reads a float)", task("123456789012345678901234567890"),
     "123456789012345678901234567890", "i1", invalid("field 'request_id' must be a string, got number"), None),
    ("a float request_id written with an exponent", task("1e2"), "1e2", "i1",
     invalid("field 'request_id' must be a string, got number"), None),
    ("a boolean request_id", task("true"), "true", "i1", invalid("field 'request_id' must be a string, got boolean"),
     None),
    ("an object as request_id", task('{"a": 1}'), None, "i1",
     invalid("field 'request_id' must be a string, got object"), None),
    ("an escaped quote in request_id", task('"r\\"q"'), 'r"q', "i1", UNSUPPORTED, None),
    ("a repeated request_id key (the last counts)", task('"first"', extra=', "request_id": "last"'), "last", "i1",
     UNSUPPORTED, None),
    ("nesting deeper than orjson encodes (300)", task('"r-deep"', url="1", extra=f', "x": {nested(300)}'),
     "r-deep", "i1", invalid("field 'image_url' must be a string, got number"), None),
    ("nesting deeper than orjson decodes (1100)", task('"r-deeper"', extra=f', "x": {nested(1100)}'),
     "r-deeper", "i1", BAD_JSON, "depth limit exceeded: .*"),
    ("a missing field, item exactly at the limit", None, "r-full", "i-full", invalid("missing field 'is_long'"),
     None),
]


def at_limit() -> bytes:
    head = b'{"request_id": "r-full", "image_id": "i-full", "image_url": "ftp://h/x.png", "pad": "'
    return head + b"x" * (LIMIT - len(head) - 2) + b'"}'


@pytest.fixture
def small(settings: Settings) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, max_payload_bytes=LIMIT, trim_interval=3600)  # keep what was written


@pytest.mark.parametrize(("kind", "item", "rid", "iid", "message", "detail"), CASES, ids=[c[0] for c in CASES])
async def test_each_bad_task_ends_as_one_error_with_the_ids_as_written(
    redis: Redis, keys: Keys, small: Settings, kind: str, item: bytes | None, rid: str | None, iid: str | None,
    message: str, detail: str | None,
):
    item = at_limit() if item is None else item
    assert len(item) <= LIMIT
    async with legacy_stack(redis, keys, small) as stack:
        await redis.rpush(stack.tasks, item, task('"after"', '"i-after"'))
        success, errors = await stack.outcomes(2)
        assert all(stack.alive())
    assert success == []
    [after] = [e for e in errors if e["request_id"] == "after"]
    [error] = [e for e in errors if e is not after]
    assert (error["request_id"], error["image_id"]) == (rid, iid)
    found = re.fullmatch(message, error["error_message"])
    assert found, error["error_message"]
    if detail is not None:
        assert re.fullmatch(detail, found.group(1)), found.group(1)
    assert set(error) == {"request_id", "image_id", "error_message", "timestamp"}
    assert (after["request_id"], after["image_id"]) == ("after", "i-after"), "the stage went on"
    assert await redis.xlen(keys.stream("tasks")) == 2 and await redis.xlen(keys.errors) == 2
    assert await redis.xlen(keys.stream("ocr")) == 0 and await redis.xlen(keys.dlq("ocr")) == 0


async def test_an_item_over_the_limit_is_refused_by_the_bridge_without_being_copied(
    redis: Redis, keys: Keys, small: Settings
):
    item = b'{"request_id": "r-big", "image_id": "i-big", "pad": "' + "é".encode() * LIMIT + b'"}'
    async with legacy_stack(redis, keys, small) as stack:
        await redis.rpush(stack.tasks, item, task('"after"', '"i-after"'))
        success, errors = await stack.outcomes(2)
        assert all(stack.alive())
    assert success == []
    [big] = [e for e in errors if e["request_id"] == "r-big"]  # outcomes of different tasks have no order
    assert big == {
        "request_id": "r-big", "image_id": "i-big", "timestamp": big["timestamp"],
        "error_message": f"task refused from list {stack.tasks}: it is {len(item)} bytes, over the limit of "
                         f"{LIMIT} bytes (MILLSTREAM_MAX_PAYLOAD_BYTES); store large data elsewhere and send a "
                         "reference"}
    [(_, record)] = await redis.xrange(keys.errors, count=1)
    payload = orjson.loads(record[b"d"])["payload"]
    assert payload["raw_bytes"] == len(item)
    assert payload["raw"] == item[:256].decode(errors="ignore"), "a prefix, a character cut at its end dropped"
    assert [f[b"rid"] for _, f in await redis.xrange(keys.stream("tasks"))] == [b"after"], "never copied"
    assert sorted(e["request_id"] for e in errors) == ["after", "r-big"]


async def test_a_refused_item_with_junk_bytes_keeps_a_valid_utf8_prefix(redis: Redis, keys: Keys, small: Settings):
    item = b'{"request_id": 7, "image_id": "i\xff", ' + b"\xfe" * LIMIT + b"}"
    async with legacy_stack(redis, keys, small) as stack:
        await redis.rpush(stack.tasks, item)
        _, [error] = await stack.outcomes(1)
    assert (error["request_id"], error["image_id"]) == ("7", None), "junk is no id"
    [(_, record)] = await redis.xrange(keys.errors, count=1)
    raw = orjson.loads(record[b"d"])["payload"]["raw"]
    assert raw == item[:256].decode(errors="replace").replace("\ufffd", "?")


def fields(**values: str | bytes) -> dict[str, str | bytes]:
    """An entry's fields: a task envelope, with some replaced, or dropped where given b"-"."""
    base: dict[str, str | bytes] = {"v": "1", "d": task(), "rid": "r1", "att": "1", "t0": "0"}
    return {k: v for k, v in {**base, **values}.items() if v != b"-"}


UNDECODABLE = r"undecodable entry \d+-\d+: "
# (kind, fields written by XADD, request_id, image_id, error message pattern)
STREAM_CASES = [
    ("no envelope at all", {"garbage": "yes"}, None, None,
     UNDECODABLE + re.escape("unsupported envelope version None (expected b'1')")),
    ("another envelope version", fields(v="2"), "r1", "i1",
     UNDECODABLE + re.escape("unsupported envelope version b'2' (expected b'1')")),
    ("no rid field", fields(rid=b"-"), "r1", "i1", UNDECODABLE + re.escape("entry lacks field b'rid'")),
    ("d is not JSON", fields(d="{not json"), None, None,
     UNDECODABLE + r"entry is not valid JSON/UTF-8: unexpected character.*"),
    ("d holds NaN", fields(d=task('"r-nan"', extra=', "x": NaN')), "r-nan", "i1",
     UNDECODABLE + r"entry is not valid JSON/UTF-8: unexpected character, expected a JSON value.*"),
    ("d is a JSON array", fields(d="[1]"), None, None,
     UNDECODABLE + re.escape("payload must be a JSON object, got list")),
    ("rid is invalid UTF-8", fields(rid=b"r\xff"), "r1", "i1",
     UNDECODABLE + re.escape("entry is not valid JSON/UTF-8: 'utf-8' codec can't decode byte 0xff") + ".*"),
    ("att is not a number", fields(att="one"), "r1", "i1",
     UNDECODABLE + re.escape("entry is not valid JSON/UTF-8: invalid literal for int() with base 10: b'one'")),
    ("t0 has 5000 digits", fields(t0="9" * 5000), "r1", "i1",
     UNDECODABLE + r"entry is not valid JSON/UTF-8: Exceeds the limit \(4300 digits\).*"),
    ("a forged bridge entry with a huge integer id", fields(d=task("123456789012345678901234567890"), lg="x"),
     "123456789012345678901234567890", "i1", invalid("field 'request_id' must be a string, got number")),
]


@pytest.mark.parametrize(("kind", "entry", "rid", "iid", "message"), STREAM_CASES, ids=[c[0] for c in STREAM_CASES])
async def test_each_odd_entry_in_the_tasks_stream_ends_as_one_error_with_the_ids_it_holds(
    redis: Redis, keys: Keys, small: Settings, kind: str, entry: dict[str, str | bytes], rid: str | None,
    iid: str | None, message: str,
):
    async with legacy_stack(redis, keys, small) as stack:
        await redis.xadd(keys.stream("tasks"), entry)  # type: ignore[arg-type]
        await redis.rpush(stack.tasks, task('"after"', '"i-after"'))
        success, errors = await stack.outcomes(2)
        assert all(stack.alive())
    assert success == []
    [after] = [e for e in errors if e["request_id"] == "after"]
    [error] = [e for e in errors if e is not after]
    assert (error["request_id"], error["image_id"]) == (rid, iid)
    assert re.fullmatch(message, error["error_message"]), error["error_message"]
    assert await redis.xlen(keys.errors) == 2 and await redis.xlen(keys.stream("ocr")) == 0
