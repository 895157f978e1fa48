"""`millstream pause|resume|pending|trim` as an on-call engineer runs them, on a real redis-server.

The commands are those streams.cli.ops registers, on an app built here (the
``millstream`` app wires the same ``register``), run through typer's CliRunner
with the environment a shell would give them. Each test has a namespace of its
own, so that "the only pipeline" is its own.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
import redis as sync_redis
import typer
from typer.testing import CliRunner, Result

from streams.cli import ops
from streams.redis import library
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.support.redis_server import RedisServer


class Cli:
    def __init__(self, url: str, keys: Keys) -> None:
        self.app = typer.Typer()
        ops.register(self.app)
        self.env = {"MILLSTREAM_REDIS_URL": url, "MILLSTREAM_NAMESPACE": keys.namespace,
                    "MILLSTREAM_OPERATOR": "oncall-jo"}

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(self.app, list(args), env=self.env)
        assert result.exit_code == code, result.output
        return result

    def json(self, *args: str) -> Any:
        return orjson.loads(self(*args, "--json").stdout)


@pytest.fixture
def keys(pipeline_name: str) -> Keys:
    return Keys(f"ops{uuid.uuid4().hex[:8]}", pipeline_name)


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys) -> Cli:
    return Cli(redis_server.url, keys)


def publish(url: str, keys: Keys, rids: list[str]) -> None:
    async def go() -> None:
        redis = connect(Settings(redis_url=url))
        await library.load(redis)
        await Publisher(redis, keys).publish_many("in", [({"n": i}, r) for i, r in enumerate(rids)])
        await redis.aclose()

    asyncio.run(go())


def read(client: sync_redis.Redis, keys: Keys, consumer: str, count: int) -> list[bytes]:
    """Stage "s" reads ``count`` entries of "in" as ``consumer`` (and leaves them pending)."""
    client.xgroup_create(keys.stream("in"), "s", id="0", mkstream=True)
    [[_, entries]] = client.xreadgroup("s", consumer, {keys.stream("in"): ">"}, count=count)
    return [i for i, _ in entries]


def test_pause_and_resume_say_what_changed_and_write_one_event_each(cli: Cli, client: sync_redis.Redis,
                                                                   keys: Keys, redis_server: RedisServer):
    publish(redis_server.url, keys, ["r0"])
    read(client, keys, "a", 1)

    first = cli("pause", "s")
    again = cli.json("pause", "s")
    resumed = cli("resume", "s", "--pipeline", keys.pipeline)
    not_paused = cli.json("resume", "s")

    assert f"stage s of pipeline {keys.pipeline} paused by oncall-jo at " in first.stdout
    assert "note:" not in first.stdout, "stage s has a group: it is known"
    assert (again["paused"], again["changed"], again["by"]) == (True, False, "oncall-jo")
    assert f"stage s of pipeline {keys.pipeline} resumed" in resumed.stdout
    assert (not_paused["paused"], not_paused["changed"]) == (False, False)
    assert client.hgetall(keys.paused) == {}
    controls = [(e[b"stage"], e[b"control"], e[b"by"]) for _, e in client.xrange(keys.events) if b"control" in e]
    assert controls == [(b"s", b"paused", b"oncall-jo"), (b"s", b"resumed", b"oncall-jo")]


def test_pausing_a_stage_no_stream_has_a_group_of_says_its_workers_will_start_paused(
    cli: Cli, client: sync_redis.Redis, keys: Keys, redis_server: RedisServer,
):
    publish(redis_server.url, keys, ["r0"])
    out = cli("pause", "later")
    assert "workers of that stage will start paused" in out.stdout
    assert orjson.loads(client.hget(keys.paused, "later"))["by"] == "oncall-jo"


def test_without_pipeline_a_namespace_with_two_pipelines_is_refused(cli: Cli, keys: Keys,
                                                                      redis_server: RedisServer):
    publish(redis_server.url, keys, ["r0"])
    publish(redis_server.url, Keys(keys.namespace, "other"), ["r0"])
    refused = cli("pause", "s", code=2)
    assert f"say which pipeline with --pipeline (found: other, {keys.pipeline})" in refused.output


def test_pending_lists_entry_consumer_idle_deliveries_and_request_id(cli: Cli, client: sync_redis.Redis,
                                                                    keys: Keys, redis_server: RedisServer):
    publish(redis_server.url, keys, ["r0", "r1", "evil\x1b[2J"])
    ids = read(client, keys, "a", 3)

    found = cli.json("pending", "s")
    page = cli.json("pending", "s", "--count", "2")
    table = cli("pending", "s").stdout

    assert [(p["stream"], p["entry"], p["consumer"], p["deliveries"], p["request_id"]) for p in found["pending"]] == [
        ("in", ids[0].decode(), "a", 1, "r0"), ("in", ids[1].decode(), "a", 1, "r1"),
        ("in", ids[2].decode(), "a", 1, "evil\x1b[2J")]
    assert all(p["idle_seconds"] >= 0 for p in found["pending"])
    assert (found["total"], page["total"], len(page["pending"])) == (3, 3, 2)
    assert "evil\\x1b[2J" in table and "\x1b" not in table, "request ids are shown escaped"
    assert "3 shown of 3 pending" in table
    assert found["streams"] == ["in"]
    assert f"no stream of pipeline {keys.pipeline} has a group nobody" in cli("pending", "nobody").stdout


def test_trim_removes_acknowledged_entries_of_every_stream_and_says_how_many(
    cli: Cli, client: sync_redis.Redis, keys: Keys, redis_server: RedisServer,
):
    publish(redis_server.url, keys, [f"r{i}" for i in range(5)])
    ids = read(client, keys, "a", 3)
    client.xack(keys.stream("in"), "s", *ids)
    client.xadd(keys.stream("loose"), {"k": "v"})  # no group: kept whole

    report = cli.json("trim")
    again = cli("trim").stdout

    assert report == {"pipeline": keys.pipeline, "removed": {"in": 3, "loose": 0}}
    assert client.xlen(keys.stream("in")) == 2
    assert "in: 0 removed" in again and "loose: 0 removed" in again
