"""`millstream dlq …` as an on-call engineer runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
from redis.asyncio import Redis

from streams.redis.deadletters import Selection
from streams.redis.keys import Keys
from streams.settings import Settings
from tests.integration.test_dead_letters import Flaky, dead_letters_of
from tests.support.workers import ROOT


async def dlq(settings: Settings, keys: Keys, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MILLSTREAM_REDIS_URL": settings.redis_url, "MILLSTREAM_NAMESPACE": "mst",
           "MILLSTREAM_OPERATOR": "oncall-jo"}
    command = [sys.executable, "-m", "streams", "dlq", *args, "--pipeline", keys.pipeline]
    return await asyncio.to_thread(subprocess.run, command, cwd=ROOT, env=env, capture_output=True,
                                   text=True, timeout=60, check=check)


async def test_list_pages_and_says_how_to_get_the_next_page(redis: Redis, keys: Keys, settings: Settings):
    await dead_letters_of(redis, keys, settings, Flaky(), count=10)
    first = await dlq(settings, keys, "list", "--limit", "2")
    assert "2 shown of 5 matching; next page: --after work/" in first.stdout
    cursor = first.stdout.rsplit("--after ", 1)[1].strip()
    rest = orjson.loads((await dlq(settings, keys, "list", "--after", cursor, "--json")).stdout)
    assert rest["total"] == 3 and rest["next"] is None and len(rest["letters"]) == 3


async def test_show_prints_payload_provenance_and_error_history(redis: Redis, keys: Keys, settings: Settings):
    dl = await dead_letters_of(redis, keys, settings, Flaky())
    [letter] = [d async for d in dl.select(Selection(request_id="r3"))]
    shown = await dlq(settings, keys, "show", letter.id)
    assert "request_id: r3" in shown.stdout and "RuntimeError: cannot handle item 3" in shown.stdout
    assert '"n": 3' in shown.stdout and f"source: {keys.stream('in')}" in shown.stdout
    missing = await dlq(settings, keys, "show", "1-1", check=False)
    assert missing.returncode == 1 and "no dead letter 1-1" in missing.stderr


async def test_replay_with_edit_and_dry_run_from_the_command_line(
    redis: Redis, keys: Keys, settings: Settings, tmp_path: Path
):
    await dead_letters_of(redis, keys, settings, Flaky())
    patch = tmp_path / "patch.json"
    patch.write_text('{"bad": null, "note": "fixed by jo"}')
    dry = await dlq(settings, keys, "replay", "--request-id", "r5", "--edit", str(patch), "--dry-run")
    assert "1 matching; 1 would be replayed" in dry.stdout and await redis.xlen(keys.dlq("work")) == 3
    done = await dlq(settings, keys, "replay", "--request-id", "r5", "--edit", str(patch))
    assert "1 matching; 1 replayed" in done.stdout and await redis.xlen(keys.dlq("work")) == 2
    [(_, fields)] = await redis.xrevrange(keys.stream("in"), count=1)
    assert orjson.loads(fields[b"d"]) == {"n": 5, "note": "fixed by jo"}
    audit = (await dlq(settings, keys, "audit")).stdout.splitlines()
    assert '"operator":"oncall-jo"' in audit[0].replace("\\", "")


async def test_purge_needs_yes(redis: Redis, keys: Keys, settings: Settings):
    await dead_letters_of(redis, keys, settings, Flaky())
    asked = await dlq(settings, keys, "purge", "--reason", "item 1$")
    assert "1 would be purged" in asked.stdout and "add --yes" in asked.stdout
    assert await redis.xlen(keys.dlq("work")) == 3
    await dlq(settings, keys, "purge", "--reason", "item 1$", "--yes")
    assert await redis.xlen(keys.dlq("work")) == 2


async def test_bad_time_and_regex_get_clear_errors(redis: Redis, keys: Keys, settings: Settings):
    when = await dlq(settings, keys, "list", "--since", "yesterday", check=False)
    assert when.returncode == 2 and "cannot read time 'yesterday'" in when.stderr
    regex = await dlq(settings, keys, "list", "--reason", "(", check=False)
    assert regex.returncode == 2 and "not a valid regular expression" in regex.stderr
