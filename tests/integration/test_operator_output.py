"""What the CLI shows an operator is plain text: payload text never steers the terminal or crashes a table."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from redis.asyncio import Redis

from streams.message import Message, Outgoing
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from streams.stage import Stage
from tests.integration.test_dlq_cli import dlq
from tests.support.pipelines import running, wait_for, xlen_at_least
from tests.support.redis_server import free_port
from tests.support.workers import ROOT

HOSTILE_ID = "[/]evil[bold]\x1b[2J\u202e"
HOSTILE_ERROR = "boom \x1b]8;;http://x\x07link\x1b]8;;\x07 [/red] via redis://u:pw-secret-77@h/0"


async def hostile(message: Message) -> list[Outgoing]:
    raise RuntimeError(HOSTILE_ERROR)


async def _hostile_letter(redis: Redis, keys: Keys, settings: Settings) -> None:
    await Publisher(redis, keys).publish("in", {"note": "\x1b[31mred\x1b[0m"}, request_id=HOSTILE_ID)
    async with running(redis, keys, Stage("work", "in", hostile, max_attempts=1), settings):
        await wait_for(lambda: xlen_at_least(redis, keys.dlq("work"), 1))


async def test_dlq_list_and_show_print_hostile_text_escaped_without_secrets(
        redis: Redis, keys: Keys, settings: Settings):
    await _hostile_letter(redis, keys, settings)
    listing = await dlq(settings, keys, "list")
    letter_id = (await redis.xrange(keys.dlq("work")))[0][0].decode()
    shown = await dlq(settings, keys, "show", letter_id)
    for output in (listing.stdout, shown.stdout):
        assert "\x1b" not in output and "\u202e" not in output and "\x07" not in output
        assert "pw-secret-77" not in output
    assert "[/]evil[bold]\\x1b[2J\\u202e" in shown.stdout.replace("\n", "")
    assert "redis://u:***@h/0" in shown.stdout
    assert "\\u001b[31mred" in shown.stdout  # the payload's escape, shown as JSON text


async def test_dlq_json_output_stays_valid_json_with_hostile_text(redis: Redis, keys: Keys, settings: Settings):
    await _hostile_letter(redis, keys, settings)
    output = (await dlq(settings, keys, "list", "--json")).stdout
    assert "\u202e" not in output and "\x1b" not in output.replace("\\u001b", "")
    letter = orjson.loads(output)["letters"][0]
    assert letter["request_id"] == HOSTILE_ID  # exact for scripts, escaped for the terminal
    assert "pw-secret-77" not in letter["last_error"] and "redis://u:***@h/0" in letter["last_error"]


def _millstream(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MILLSTREAM_REDIS_URL": redis_url, "MILLSTREAM_METRICS_PORT": "0"}
    return subprocess.run([sys.executable, "-m", "streams", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("command", [("status",), ("dlq", "list", "--pipeline", "p"),
                                     ("worker", "examples.wordcount:build")])
def test_an_unreachable_redis_is_one_line_without_its_password(command: tuple[str, ...]):
    port = free_port()  # nothing listens there
    done = _millstream(*command, redis_url=f"redis://ops:pw-never-shown-1@127.0.0.1:{port}/0")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "pw-never-shown-1" not in output
    assert "Traceback" not in output and "╭" not in output
    assert f"redis://ops:***@127.0.0.1:{port}/0" in output


def test_a_redis_url_that_does_not_parse_is_refused_without_its_password():
    done = _millstream("status", redis_url="redis://ops:pw-never-shown-2@[::1/0")
    assert done.returncode == 2
    assert done.stderr.strip() == "millstream: MILLSTREAM_REDIS_URL: 'redis://ops:***@[::1/0': Invalid IPv6 URL"
