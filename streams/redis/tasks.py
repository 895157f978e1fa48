"""Task status lookups, the per-stage counts, and cleaning finished status records.

Status records are kept in numbered buckets (one HSET per committed batch;
see ``write_status`` in functions/millstream.lua): ``status:head`` names the
current bucket ``n``; at most ``KEPT`` buckets, ``n - KEPT + 1`` to ``n``,
exist. The newest bucket holding the id has its latest state. Before the
first write there is no head: then the buckets are where earlier versions
numbered them, by time (``now // (status_ttl / 8)``).

A record is ``{"stage", "state", "entry", "at"[, "detail"][, "trail"]}``: its
transition, that transition's detail (streams.transition) and the task's earlier
records in the same bucket, oldest first (docs/decisions/0026).
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from streams.redis import library
from streams.redis.keys import Keys
from streams.settings import RETAINED_BUCKETS

BUCKETS = 8  # a bucket spans status_ttl / BUCKETS
KEPT = RETAINED_BUCKETS  # buckets alive at once: the current one and 8 older (KEPT in millstream.lua)
FINAL_STATES = ("done", "failed", "dead_lettered")
PAGE = 500  # status records per HSCAN page of ``clean``
# A record's head as the Lua writes it: stage, state and entry need no escaping.
_HEAD = re.compile(rb'\{"stage":"[^"]*","state":"([^"]*)","entry":"[^"]*","at":(\d+)[,}]')


async def current_bucket(redis: Redis, head: str, ttl: float) -> int:
    """The number of the current bucket under ``head`` (a status or dedup head hash)."""
    n = await redis.hget(head, "n")
    if n is not None:
        return int(n)
    return int(time.time() * 1000) // max(1, int(ttl * 1000) // BUCKETS)


async def task_status(redis: Redis, keys: Keys, request_id: str, status_ttl: float) -> dict[str, Any] | None:
    """The task's last transition with its detail and trail (see above), or None if unknown or dropped."""
    newest = await current_bucket(redis, keys.status_head, status_ttl)
    pipe = redis.pipeline(transaction=False)
    # and one newer: a write may open the next bucket between the two round trips
    for bucket in range(newest + 1, newest - KEPT, -1):
        pipe.hget(keys.status(bucket), request_id)
    for found in await pipe.execute():
        if found is not None:
            return orjson.loads(found)  # type: ignore[no-any-return]
    return None


async def counts(redis: Redis, keys: Keys) -> dict[str, dict[str, int]]:
    """Transitions committed so far: stage -> state -> how many (the ``counts`` hash)."""
    out: dict[str, dict[str, int]] = {}
    for field, value in (await redis.hgetall(keys.counts)).items():
        stage, _, state = (field.decode() if isinstance(field, bytes) else field).rpartition("/")
        out.setdefault(stage, {})[state] = int(value)
    return out


async def clean(redis: Redis, keys: Keys, status_ttl: float, older_than: float,
                final_states: Collection[str] = FINAL_STATES) -> int:
    """Remove status records in ``final_states`` written more than ``older_than`` seconds ago.

    Each bucket is scanned in pages (HSCAN, PAGE records at a time); a page's finished
    records are removed by ms_forget, which keeps a record written again since it was
    read, and removes the task's records in older buckets, which would otherwise show
    through. Returns how many records were removed.
    """
    cutoff = int((time.time() - older_than) * 1000)
    finals = {s.encode() for s in final_states}
    newest = await current_bucket(redis, keys.status_head, status_ttl)
    removed = 0
    for bucket in range(newest + 1, newest - KEPT, -1):
        older = [keys.status(b) for b in range(bucket - 1, newest - KEPT, -1)]
        cursor = 0
        while True:
            cursor, page = await redis.hscan(keys.status(bucket), cursor, count=PAGE)
            args = _finished(cast(dict[bytes, bytes], page), finals, cutoff)
            if args:
                removed += int(await library.fcall(redis, "ms_forget", [keys.status(bucket), *older], args))
            if cursor == 0:
                break
    return removed


def _finished(page: dict[bytes, bytes], finals: set[bytes], cutoff: int) -> list[bytes]:
    """request_id, head, ... of the records of ``page`` in a final state written before ``cutoff``."""
    args: list[bytes] = []
    for rid, value in page.items():
        head = _HEAD.match(value)
        if head and head.group(1) in finals and int(head.group(2)) < cutoff:
            args += (rid, head.group(0))
    return args
