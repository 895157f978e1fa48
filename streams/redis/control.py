"""Pausing and resuming a stage across every worker: the ``paused`` hash (streams.redis.keys).

A stage is paused while its name is a field of ``Keys.paused`` (value: JSON
``{"by", "at"}``); its runners read that in their upkeep (``RedisStageTransport.paused``),
so a pause outlives worker restarts and reaches every worker within about
``claim_interval``. Each pause or resume that changes the hash also appends one
entry to the events stream (fields ``stage``, ``at``, ``control``, ``by``; no
``t``), in the same MULTI/EXEC: readers of the events stream see exactly the
changes. Pausing a paused stage or resuming a running one changes nothing and
writes no event.

Cancelling a task (docs/controls/cancel.md): ``cancel`` records request_id ->
JSON ``{"by", "reason", "at", "until"}`` in ``Keys.cancels`` with one events
entry (fields ``stage`` "cancel", ``at``, ``control`` "cancelled", ``by``,
``request_id``), in one MULTI/EXEC. Runners read it (``RedisStageTransport.cancels``
and ``cancelled``): a queued entry of that task is skipped, a running handler
cancelled. It is data, not a message, so workers that were down when it was
issued honour it when they return. It counts until ``until`` (``ttl`` after it
was issued); each write drops the expired cancels among CANCEL_SAMPLE random
fields, as Redis samples keys to expire, and the key expires with its latest
cancel, so the hash holds about the cancels of the last ``ttl``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from streams.names import checked
from streams.redis.keys import Keys
from streams.settings import Settings

CANCEL_SAMPLE = 20  # random cancels a write looks at, dropping the expired ones
MAX_REASON_CHARS = 500
MAX_REQUEST_ID_CHARS = 1024


async def pause(redis: Redis, keys: Keys, stage: str, by: str, events_maxlen: int) -> dict[str, Any]:
    """Pause ``stage``; answer ``{"stage", "paused": True, "by", "at", "changed"}``.

    Already paused: the earlier pause's ``by`` and ``at``, ``changed`` False.
    """
    checked("stage", stage)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.paused)
                current = await pipe.hget(keys.paused, stage)
                if current is not None:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return {"stage": stage, "paused": True, **_record(current), "changed": False}
                at = int(time.time() * 1000)
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hset(keys.paused, stage, orjson.dumps({"by": by, "at": at}))
                _event(pipe, keys, stage, at, "paused", by, events_maxlen)
                await pipe.execute()
                return {"stage": stage, "paused": True, "by": by, "at": at, "changed": True}
            except WatchError:  # paused or resumed meanwhile by someone else: look again
                continue


async def resume(redis: Redis, keys: Keys, stage: str, by: str, events_maxlen: int) -> dict[str, Any]:
    """Resume ``stage``; answer ``{"stage", "paused": False, "changed"}`` (False: it was not paused)."""
    checked("stage", stage)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.paused)
                if not await pipe.hexists(keys.paused, stage):
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return {"stage": stage, "paused": False, "changed": False}
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hdel(keys.paused, stage)
                _event(pipe, keys, stage, int(time.time() * 1000), "resumed", by, events_maxlen)
                await pipe.execute()
                return {"stage": stage, "paused": False, "changed": True}
            except WatchError:
                continue


async def paused(redis: Redis, keys: Keys) -> dict[str, dict[str, Any]]:
    """The paused stages: stage -> ``{"by", "at"}``."""
    found = await redis.hgetall(keys.paused)
    return {_text(stage): _record(value) for stage, value in sorted(found.items())}


def _event(pipe: Pipeline, keys: Keys, stage: str, at: int, control: str, by: str, maxlen: int) -> None:
    pipe.xadd(keys.events, {"stage": stage, "at": at, "control": control, "by": by},
              maxlen=maxlen, approximate=True)


def _record(value: bytes | str) -> dict[str, Any]:
    """``{"by", "at"}`` from a hash value; a value not written by ``pause`` reads as unknown."""
    try:
        found = orjson.loads(value)
    except orjson.JSONDecodeError:
        found = None
    if not isinstance(found, dict):
        found = {}
    at = found.get("at")
    return {"by": str(found.get("by", "unknown")), "at": at if isinstance(at, int) else 0}


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# -- cancel --------------------------------------------------------------------------


def cancel_ttl(settings: Settings) -> float:
    """How long a cancel counts: a task may wait queued as long as its status record or dedup record lives."""
    return max(settings.status_ttl, settings.dedup_window)


async def cancel(redis: Redis, keys: Keys, request_id: str, by: str, reason: str, ttl: float, *,
                 events_maxlen: int = 10_000) -> dict[str, Any]:
    """Cancel task ``request_id`` for ``ttl`` seconds.

    Answers ``{"request_id", "cancelled": True, "by", "reason", "at", "until", "changed"}``;
    already cancelled: the earlier cancel's, ``changed`` False, and no event.
    """
    if not 0 < len(request_id) <= MAX_REQUEST_ID_CHARS or not ttl > 0:
        raise ValueError(f"a cancel needs a request id of 1 to {MAX_REQUEST_ID_CHARS} characters "
                         f"and a ttl > 0 (got {len(request_id)} characters, ttl {ttl})")
    reason = reason[:MAX_REASON_CHARS]
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.cancels)
                at = int(time.time() * 1000)
                current = await pipe.hget(keys.cancels, request_id)
                if current is not None and (found := _cancel_record(current))["until"] > at:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return {"request_id": request_id, "cancelled": True, **found, "changed": False}
                expired = _expired(await pipe.hrandfield(keys.cancels, CANCEL_SAMPLE, withvalues=True), at)
                until = at + max(1, int(ttl * 1000))
                record = {"by": by, "reason": reason, "at": at, "until": until}
                pipe.multi()  # type: ignore[no-untyped-call]
                if expired:
                    pipe.hdel(keys.cancels, *expired)
                pipe.hset(keys.cancels, request_id, orjson.dumps(record))
                pipe.pexpireat(keys.cancels, until, nx=True)  # a new hash: it expires at all
                pipe.pexpireat(keys.cancels, until, gt=True)  # with its latest cancel
                pipe.xadd(keys.events, {"stage": "cancel", "at": at, "control": "cancelled", "by": by,
                                        "request_id": request_id}, maxlen=events_maxlen, approximate=True)
                await pipe.execute()
                return {"request_id": request_id, "cancelled": True, **record, "changed": True}
            except WatchError:  # cancelled meanwhile by someone else: look again
                continue


async def cancelled(redis: Redis, keys: Keys, request_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Those of ``request_ids`` cancelled: request_id -> ``{"by", "reason", "at", "until"}`` (one HMGET)."""
    if not request_ids:
        return {}
    values = await redis.hmget(keys.cancels, list(request_ids))
    now = int(time.time() * 1000)
    found = {}
    for rid, value in zip(request_ids, values, strict=True):
        if value is not None and (record := _cancel_record(value))["until"] > now:
            found[rid] = record
    return found


async def any_cancelled(redis: Redis, keys: Keys) -> bool:
    """Whether any cancel may count now (the hash exists): one EXISTS, for the runners' upkeep."""
    return bool(await redis.exists(keys.cancels))


def _expired(sample: Any, now: int) -> list[bytes]:
    """The fields of an HRANDFIELD ... WITHVALUES reply (RESP2: flat; RESP3: pairs) whose cancel expired."""
    pairs = [tuple(p) for p in sample] if sample and isinstance(sample[0], list) else \
        list(zip(sample[::2], sample[1::2], strict=True))
    return [field for field, value in pairs if _cancel_record(value)["until"] <= now]


def _cancel_record(value: bytes | str) -> dict[str, Any]:
    """``{"by", "reason", "at", "until"}`` from a hash value; one not written by ``cancel`` has expired."""
    try:
        found = orjson.loads(value)
    except orjson.JSONDecodeError:
        found = None
    if not isinstance(found, dict):
        found = {}
    at, until = found.get("at"), found.get("until")
    return {"by": str(found.get("by", "unknown")), "reason": str(found.get("reason", "")),
            "at": at if type(at) is int else 0, "until": until if type(until) is int else 0}
