"""A cancelled image task leaves exactly one entry on the legacy error list, saying who cancelled it and why.

The image pipeline's real task path runs in-process (tests/support/legacy_stack.py):
the bridge, the ocr stage and the legacy-error and legacy-success mirrors. The
cancel is issued before the task is pushed; the ocr stage skips it, and the
legacy-error mirror (a follower, which never cancels) mirrors its record once.
"""

from __future__ import annotations

import dataclasses

import orjson
from redis.asyncio import Redis

from streams.redis import control
from streams.redis.keys import Keys
from streams.settings import Settings
from tests.support.legacy_stack import legacy_stack
from tests.support.pipelines import wait_for


def task(rid: str, url: str) -> bytes:
    return orjson.dumps({"request_id": rid, "image_id": f"img-{rid}", "image_url": url, "is_long": False})


async def test_a_cancelled_image_task_ends_as_one_legacy_error_and_nothing_else(
    redis: Redis, keys: Keys, settings: Settings
):
    kept = dataclasses.replace(settings, trim_interval=3600, operator="oncall-jo")  # keep what was written
    async with legacy_stack(redis, keys, kept) as stack:
        await control.cancel(redis, keys, "r-cancel", "oncall-jo", "customer withdrew", 3600)
        ocr = next(r for r in stack.runners if r.stage.name == "ocr")

        async def noticed() -> bool:
            return ocr.cancels.active
        await wait_for(noticed)
        # Fetching either URL fails at once: had the cancelled task run, its error would say so.
        await redis.rpush(stack.tasks, task("r-cancel", "http://127.0.0.1:9/a.png"),
                          task("r-other", "ftp://h/b.png"))
        success, errors = await stack.outcomes(2)

    assert success == []
    assert sorted((e["request_id"], e["image_id"]) for e in errors) == [
        ("r-cancel", "img-r-cancel"), ("r-other", "img-r-other")]
    [cancelled] = [e for e in errors if e["request_id"] == "r-cancel"]
    assert cancelled["error_message"] == "cancelled by oncall-jo: customer withdrew"
    assert set(cancelled) == {"request_id", "image_id", "error_message", "timestamp"}
    records = [orjson.loads(f[b"d"]) for _, f in await redis.xrange(keys.errors)]
    assert sorted((r["request_id"], r["stage"]) for r in records) == [("r-cancel", "ocr"), ("r-other", "ocr")]
