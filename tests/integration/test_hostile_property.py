"""Property: whatever is pushed onto the task list or added to the tasks stream, each ends as one outcome.

Hypothesis writes arbitrary JSON-like values as text (deep nesting, NaN, Infinity,
hex and huge numbers, raw control characters, lone surrogates, invalid UTF-8,
non-object JSON, strings up to and over the payload limit) and raw bytes onto
the legacy task list, and arbitrary fields straight into the tasks stream. The
image pipeline's task path runs behind them (tests/support/legacy_stack.py).
Checked: exactly one img:translate:error entry per input (none can succeed: no
image is fetchable), every runner still running at the end, and Redis answering
PING within 100 ms throughout, measured every 10 ms from a process of its own.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.service.processes import terminate
from streams.settings import Settings
from tests.support.legacy_stack import legacy_stack
from tests.support.redis_server import RedisServer

LIMIT = 256 * 1024
ODD_LITERALS = ["NaN", "Infinity", "-Infinity", "0x1F", "+1", "01", "1e400", "12345678901234567890",
                "123456789012345678901234567890", '"ctl\x01\x1f"', '"\\ud800"', '"bad \\x escape"', "tru", ""]
FAILING_URLS = ['"ftp://h/x.png"', '""', '"no scheme"', "5", "null"]

json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def as_text(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an int beyond 64 bits: written as Python writes it, still a JSON number
        return str(value)


value_text = st.one_of(
    json_like.map(as_text),
    st.sampled_from(ODD_LITERALS),
    st.integers(250, 1100).map(lambda depth: "[" * depth + "]" * depth),
    st.sampled_from([LIMIT - 200, LIMIT, LIMIT + 1, 3 * LIMIT]).map(lambda n: '"' + "x" * n + '"'),
)


@st.composite
def task_items(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A task-shaped item (its parts written as odd text), and the request id it was tagged with, if any."""
    tag = f"p{uuid.uuid4().hex[:10]}"
    rid = draw(st.sampled_from([f'"{tag}"', None])) or draw(value_text)
    parts = [f'"request_id": {rid}', f'"image_id": {draw(value_text)}',
             f'"image_url": {draw(st.sampled_from(FAILING_URLS))}', '"is_long": false']
    parts += [f'"{draw(st.text("abcxyz", max_size=6))}": {draw(value_text)}' for _ in range(draw(st.integers(0, 2)))]
    text = "{" + ", ".join(draw(st.permutations(parts))) + draw(st.sampled_from(["}", "", "}}", ", }"]))
    data = text.encode()
    if draw(st.booleans()) and len(data) > 2:
        cut = draw(st.integers(1, len(data) - 1))
        return data[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + data[cut:], None
    # Readable, so the outcome must carry it: the item is admitted whole, or the bridge refusing
    # it finds the id in the first bytes it searches (ms_ingress reads 4 KiB of a refused item).
    readable = rid == f'"{tag}"' and (len(data) <= LIMIT or 0 <= data.find(tag.encode()) < 4000)
    return data, tag if readable else None


list_items = st.one_of(
    task_items(),
    json_like.map(lambda v: (as_text(v).encode(), None)),
    st.binary(max_size=300).map(lambda b: (b, None)),
)
stream_entries = st.dictionaries(
    st.sampled_from([b"v", b"d", b"rid", b"att", b"t0", b"lg", b"errs"]) | st.binary(min_size=1, max_size=4),
    st.sampled_from([b"1", b"0", b"-1", b"99999999999999999999", b"{}", b"[]"]) | st.binary(max_size=60)
    | task_items().map(lambda item: item[0]),
    min_size=1, max_size=7,
)
inputs = st.lists(st.one_of(list_items.map(lambda i: ("list", i)), stream_entries.map(lambda e: ("stream", e))),
                  min_size=1, max_size=6)


PINGER = """
import sys, time, redis
client, worst, count, path = redis.Redis.from_url(sys.argv[1]), 0.0, 0, sys.argv[2]
while True:
    started = time.perf_counter()
    client.ping()
    worst, count = max(worst, time.perf_counter() - started), count + 1
    if count % 10 == 0:
        with open(path + ".new", "w") as out:
            out.write(f"{count} {worst}")
        os.replace(path + ".new", path)
    time.sleep(0.01)
""".replace("import sys", "import os, sys")


class Pinger:
    """PINGs Redis every 10 ms from a process of its own (no GIL shared with the stages under test).

    ``reading()`` gives (PINGs answered, the slowest reply in seconds) so far.
    """

    def __init__(self, url: str, path: Path) -> None:
        self.path = path
        self.process = subprocess.Popen([sys.executable, "-c", PINGER, url, str(path)])

    def reading(self) -> tuple[int, float]:
        count, worst = self.path.read_text().split() if self.path.exists() else ("0", "0")
        return int(count), float(worst)

    def stop(self) -> None:
        terminate(self.process)


@pytest.fixture(scope="module")
def pinger(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pinger]:
    process = Pinger(redis_server.url, tmp_path_factory.mktemp("ping") / "reading")
    yield process
    process.stop()
    count, worst = process.reading()
    print(f"PING: {count} replies, the slowest {worst * 1000:.1f} ms")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pushed=inputs)
def test_every_input_ends_as_exactly_one_outcome_and_nothing_stalls(
    redis_server: RedisServer, pinger: Pinger, pushed: list[tuple[str, object]]
) -> None:
    asyncio.run(_check(redis_server.url, pushed))
    count, worst = pinger.reading()
    assert worst < 0.1, f"Redis took {worst * 1000:.0f} ms to answer a PING (of {count} so far)"


async def _check(url: str, pushed: list[tuple[str, object]]) -> None:
    config = Settings(redis_url=url, consumer="c-prop", metrics_port=0, heartbeat_ttl=1.0, claim_interval=0.2,
                      trim_interval=0.5, stats_interval=0.5, max_payload_bytes=LIMIT)
    keys, client = Keys("mst", f"t{uuid.uuid4().hex[:10]}"), connect(config)
    await library.load(client)
    try:
        async with legacy_stack(client, keys, config) as stack:
            tags = []
            for where, what in pushed:
                if where == "list":
                    item, tag = what  # type: ignore[misc]
                    await client.rpush(stack.tasks, item)
                    tags += [tag] if tag else []
                else:
                    await client.xadd(keys.stream("tasks"), what)  # type: ignore[arg-type]
            success, errors = await stack.outcomes(len(pushed), timeout=30)
            assert all(stack.alive()), "a runner ended"
        assert success == [] and len(errors) == len(pushed), (success, errors)
        outcome_ids = [e["request_id"] for e in errors]
        assert all(outcome_ids.count(tag) == 1 for tag in tags), (tags, outcome_ids)
    finally:
        await client.aclose()

