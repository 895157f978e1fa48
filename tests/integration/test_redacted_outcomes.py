"""Secrets in a processor's exception text reach no error record, dead letter, retry history or legacy list."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from processors.legacy import mirror_errors
from streams.engine.runner import StageRunner
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.policy import RetryPolicy
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.transport import RedisTransport
from streams.settings import Settings
from streams.stage import Stage
from tests.support.pipelines import running, wait_for

KEY = "sk-live-0123456789abcdef"
LEAKY = (f"redirect loop fetching https://api.example/v1 via redis://u:pw@h:6379/0; "
         f"request headers:\nAuthorization: Bearer X\nx-provider-key: {KEY}")


async def leaks(message: Message) -> list[Outgoing]:
    raise RuntimeError(LEAKY)


def assert_clean(text: str) -> None:
    assert "pw@" not in text and "Bearer X" not in text and KEY not in text, text


async def test_secrets_in_an_exception_reach_no_record_dead_letter_or_legacy_list(
    redis: Redis, keys: Keys, settings: Settings
):
    error_list = f"test:{uuid.uuid4().hex[:8]}:error"
    settings = dataclasses.replace(settings, trim_interval=3600)  # keep the records to read them
    await Publisher(redis, keys).publish("tasks", {"request_id": "r1", "image_id": "i1"}, request_id="r1")
    stage = Stage("ocr", "tasks", leaks, max_attempts=2, retry=RetryPolicy(base=0.01, cap=0.02))
    mirror = Stage("legacy-error", "errors", mirror_errors(error_list, {"ocr"}))
    runner = StageRunner(RedisTransport(redis, keys, settings), stage, settings, Metrics(CollectorRegistry()), secrets=[KEY])
    async with running(redis, keys, mirror, settings):
        task = asyncio.create_task(runner.run())
        await wait_for(lambda: redis.llen(error_list))
        runner.stop()
        await task
    [(_, dead)] = await redis.xrange(keys.dlq("ocr"))
    [(_, record)] = await redis.xrange(keys.errors)
    legacy = (await redis.lrange(error_list, 0, -1))[0].decode()
    texts = [dead[b"reason"].decode(), dead[b"last_error"].decode(), dead[b"errs"].decode(),
             record[b"d"].decode(), legacy]
    for text in texts:
        assert_clean(text)
        assert "redis://u:***@h:6379/0" in text and "Authorization: ***" in text, text
    assert "x-provider-key: ***" in dead[b"last_error"].decode()
    assert dead[b"errs"].decode().count("redis://u:***@h") == 1, "the first attempt's error, redacted"
