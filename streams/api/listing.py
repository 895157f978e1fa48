"""Pages of tasks for ``GET /v1/tasks``: each page costs the same on a stream of a million entries.

Where a task waits is read from the structure that holds it, with a cursor
into it: ``waiting`` (the stage's stream past the group's last delivered
entry), ``active`` (the group's pending entries), ``delayed`` (the retry set)
and ``dead`` (the stage's dead letters). Any other state is a status record's:
the status buckets are walked with HSCAN, newest bucket first, a bounded
number of records per page, so a page may hold fewer tasks than asked for
and still have a ``next`` cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from streams.redis.keys import Keys
from streams.redis.tasks import KEPT, current_bucket
from streams.stage import Stage

QUEUES = ("waiting", "active", "delayed", "dead")
SUMMARY = ("stage", "state", "entry", "at")
SCAN_PER_ITEM = 20  # status records looked at per task asked for, at most


class BadCursor(ValueError):
    """A ``page`` cursor that this listing did not hand out."""


@dataclass(frozen=True, slots=True)
class Listing:
    tasks: list[dict[str, Any]]
    next: str | None


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


def _entry_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    ms, dash, seq = cursor.partition("-")
    if not (dash and ms.isdigit() and seq.isdigit()):
        raise BadCursor(cursor)
    return cursor


def _item(stage: Stage, state: str, entry_id: str, fields: dict[bytes, bytes],
          **extra: Any) -> dict[str, Any]:
    return {"request_id": _text(fields.get(b"rid", b"")), "stage": stage.name, "state": state,
            "entry": entry_id, "at": _ms(entry_id), **extra}


async def _waiting(redis: Redis, keys: Keys, stage: Stage, limit: int, cursor: str | None) -> Listing:
    key = keys.stream(stage.source)
    after = _entry_cursor(cursor)
    if after is None:
        groups = await redis.xinfo_groups(key) if await redis.exists(key) else []
        info = next((g for g in groups if _text(g["name"]) == stage.group), None)
        after = _text(info["last-delivered-id"]) if info else "0-0"
    found: Any = await redis.xrange(key, min=f"({after}", count=limit)
    tasks = [_item(stage, "waiting", _text(i), f) for i, f in found]
    return Listing(tasks, tasks[-1]["entry"] if len(tasks) == limit else None)


async def _fields_of(redis: Redis, key: str, ids: list[str]) -> list[dict[bytes, bytes]]:
    pipe = redis.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(key, min=entry_id, max=entry_id)
    return [found[0][1] if found else {} for found in await pipe.execute()]


async def _active(redis: Redis, keys: Keys, stage: Stage, limit: int, cursor: str | None) -> Listing:
    key = keys.stream(stage.source)
    after = _entry_cursor(cursor)
    if not await redis.exists(key):
        return Listing([], None)
    pending: Any = await redis.xpending_range(key, stage.group, min=f"({after}" if after else "-", max="+",
                                         count=limit)
    ids = [_text(p["message_id"]) for p in pending]
    fields = await _fields_of(redis, key, ids)
    tasks = [_item(stage, "active", i, f, consumer=_text(p["consumer"]),
                   idle_seconds=int(p["time_since_delivered"]) / 1000, deliveries=int(p["times_delivered"]))
             for i, f, p in zip(ids, fields, pending, strict=True)]
    return Listing(tasks, ids[-1] if len(ids) == limit else None)


async def _delayed(redis: Redis, keys: Keys, stage: Stage, limit: int, cursor: str | None) -> Listing:
    if cursor is not None and not cursor.isdigit():
        raise BadCursor(cursor)
    start = int(cursor or 0)
    found: Any = await redis.zrange(keys.delayed(stage.source), start, start + limit - 1, withscores=True)
    tasks = []
    for member, due in found:
        try:
            flat = orjson.loads(member)
            fields = dict(zip(flat[::2], flat[1::2], strict=False)) if isinstance(flat, list) else {}
        except orjson.JSONDecodeError:
            fields = {}
        tasks.append({"request_id": str(fields.get("rid", "")), "stage": stage.name, "state": "delayed",
                      "entry": None, "at": int(due), "due_at": int(due)})
    return Listing(tasks, str(start + limit) if len(found) == limit else None)


async def _dead(redis: Redis, keys: Keys, stage: Stage, limit: int, cursor: str | None) -> Listing:
    after = _entry_cursor(cursor)
    found: Any = await redis.xrange(keys.dlq(stage.name), min=f"({after}" if after else "-", count=limit)
    tasks = [_item(stage, "dead", _text(i), f, reason=_text(f.get(b"reason", b""))) for i, f in found]
    return Listing(tasks, tasks[-1]["entry"] if len(tasks) == limit else None)


async def queue(redis: Redis, keys: Keys, stage: Stage, state: str, limit: int,
                cursor: str | None) -> Listing:
    """A page of the tasks in ``state`` (one of QUEUES) at ``stage``."""
    read = {"waiting": _waiting, "active": _active, "delayed": _delayed, "dead": _dead}[state]
    return await read(redis, keys, stage, limit, cursor)


def _status_cursor(cursor: str | None) -> tuple[int | None, int]:
    if cursor is None:
        return None, 0
    bucket, colon, position = cursor.partition(":")
    if not (colon and bucket.isdigit() and position.isdigit()):
        raise BadCursor(cursor)
    return int(bucket), int(position)


async def status(redis: Redis, keys: Keys, status_ttl: float, stage: str | None, state: str | None,
                 limit: int, cursor: str | None) -> Listing:
    """A page of status records, newest bucket first, filtered by last stage and state."""
    bucket, position = _status_cursor(cursor)
    newest = await current_bucket(redis, keys.status_head, status_ttl) + 1
    if bucket is None:
        bucket = newest
    if not newest - KEPT < bucket <= newest:
        raise BadCursor(cursor or "")
    budget, tasks = limit * SCAN_PER_ITEM, list[dict[str, Any]]()
    while budget > 0 and len(tasks) < limit and bucket > newest - KEPT:
        found: Any
        position, found = await redis.hscan(keys.status(bucket), position, count=min(budget, 1000))
        budget -= max(1, len(found))
        for rid, value in found.items():
            try:
                record = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if (stage in (None, record.get("stage"))) and (state in (None, record.get("state"))):
                tasks.append({"request_id": _text(rid), **{k: record.get(k) for k in SUMMARY}})
        if position == 0:
            bucket -= 1
    more = bucket > newest - KEPT
    return Listing(tasks, f"{bucket}:{position}" if more else None)
