"""The legacy list bridge: Redis list queues of the old pipeline <-> streams.

Contracts (CONTRACTS.md): producers push tasks onto ``img:translate:tasks``;
consumers BLPOP outcomes from ``img:translate:success`` / ``img:translate:error``
(and, when enabled, ``hosting:tasks`` and ``ocr:results``).

* Ingress (``ListIngress``): ``ms_ingress`` pops from the head of the list, the
  end the old BLPOP consumer used, and appends to the tasks stream in the same
  atomic call: a crash of the bridge neither loses nor repeats a task. When
  the list is empty the bridge waits with ``BLMOVE list list LEFT LEFT``, which
  blocks until an item arrives and leaves it where it is. Items move unread
  (the stage reading the stream validates them); one over ``max_item_bytes``
  becomes an error record instead, and one call moves at most
  ``max_call_bytes`` plus one item, so it holds Redis for a few milliseconds
  (docs/decisions/0017-bridge-moves-items-unread.md).
* Egress: ordinary stages whose processors (``mirror_success``,
  ``mirror_errors``) return ``Outgoing(list=...)``; the RPUSH is part of the
  stage's atomic commit, so each outcome is mirrored exactly once.

Lists live outside the pipeline's hash tag: on Redis Cluster the bridge needs
the legacy lists and the pipeline on one node, as the old workers had them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from streams.message import Handler, Message, Outgoing
from streams.redis.keys import Keys
from streams.redis.library import fcall

log = logging.getLogger("millstream.legacy")

TASKS = "img:translate:tasks"
SUCCESS = "img:translate:success"
ERROR = "img:translate:error"
HOSTING = "hosting:tasks"
OCR_RESULTS = "ocr:results"


@dataclass(frozen=True, slots=True)
class LegacySettings:
    """Which legacy lists are mirrored (``MILLSTREAM_LEGACY_*``)."""

    legacy_ingress: bool = True
    legacy_success: bool = True
    legacy_error: bool = True
    legacy_hosting: bool = False
    legacy_ocr_results: bool = False


MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class ListIngress:
    """Move tasks pushed onto Redis list ``list_key`` into logical stream ``stream``."""

    name: str
    list_key: str
    stream: str
    batch: int = 100

    def __post_init__(self) -> None:
        # One ms_ingress call costs Redis about 10 µs per item: 500 items keep it near 5 ms.
        if not 1 <= self.batch <= MAX_BATCH:
            raise ValueError(f"ingress {self.name!r}: batch must be between 1 and {MAX_BATCH}")


MAX_CALL_BYTES = 256 * 1024  # items' bytes after which one ms_ingress call stops popping


class IngressRunner:
    """Moves the items of one list; ``max_item_bytes`` is the payload limit (Settings.max_payload_bytes)."""

    def __init__(self, redis: Redis, keys: Keys, ingress: ListIngress, status_ttl: float,
                 events_maxlen: int, max_item_bytes: int = 1024 * 1024,
                 max_call_bytes: int = MAX_CALL_BYTES) -> None:
        self.redis, self.keys, self.ingress = redis, keys, ingress
        self.status_ttl_ms, self.events_maxlen = int(status_ttl * 1000), events_maxlen
        self.max_item_bytes, self.max_call_bytes = max_item_bytes, max_call_bytes
        self._stop = asyncio.Event()
        self.moved = 0

    def stop(self) -> None:
        self._stop.set()

    async def move_once(self) -> int:
        """Move up to one batch; return how many items left the list."""
        keys = [self.ingress.list_key, self.keys.stream(self.ingress.stream), self.keys.events,
                self.keys.errors]
        moved = int(await fcall(self.redis, "ms_ingress", keys, [
            int(time.time() * 1000), self.ingress.batch, self.status_ttl_ms, self.events_maxlen,
            self.keys.status_prefix, self.ingress.name, self.max_item_bytes, self.max_call_bytes,
        ]))
        self.moved += moved
        return moved

    async def run(self) -> None:
        """Move tasks until stopped; survive Redis outages."""
        log.info("%s: moving %s into %s", self.ingress.name, self.ingress.list_key,
                 self.keys.stream(self.ingress.stream))
        while not self._stop.is_set():
            try:
                if not await self.move_once():
                    key = self.ingress.list_key
                    await self.redis.blmove(key, key, 0.5, "LEFT", "LEFT")  # type: ignore[arg-type]
            except (RedisError, OSError) as error:
                log.warning("%s: %s; retrying in 1s", self.ingress.name, error)
                await asyncio.sleep(1)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _id(value: Any) -> str | None:
    """An id for the error list: text as it is, a number's digits; nothing else is an id."""
    if value is None or isinstance(value, Mapping | list | bool):
        return None
    return value if isinstance(value, str) else str(value)


def success_contract(payload: Mapping[str, Any]) -> dict[str, Any]:
    """``img:translate:success`` JSON: exactly request_id, image_id, image_url."""
    return {"request_id": _text(payload.get("request_id")), "image_id": _text(payload.get("image_id")),
            "image_url": _text(payload.get("image_url"))}


def error_contract(record: Mapping[str, Any]) -> dict[str, Any]:
    """``img:translate:error`` JSON from an error record: the task's own ids, or null.

    The ids are the record's ``ids``, read from the task's own text whatever
    its JSON held (streams.engine.error_records), so a number stays as written; a
    record without them (an older one) gives its payload's.
    """
    ids = record.get("ids")
    if not isinstance(ids, Mapping):
        ids = record.get("payload")
        ids = ids if isinstance(ids, Mapping) else {}
    timestamp = record.get("timestamp")
    return {"request_id": _id(ids.get("request_id")), "image_id": _id(ids.get("image_id")),
            "error_message": str(record.get("error_message", "")),
            "timestamp": timestamp if type(timestamp) is int else int(time.time())}


def mirror_success(lists: Sequence[str]) -> Handler:
    """A processor mirroring each success onto ``lists`` (e.g. success and hosting)."""

    async def mirror(message: Message) -> list[Outgoing]:
        contract = success_contract(message.payload)
        return [Outgoing(contract, list=key) for key in lists]

    return mirror


def mirror_errors(list_key: str, stages: Collection[str]) -> Handler:
    """A processor mirroring error records of the task ``stages`` onto ``list_key``.

    Errors of other stages (a webhook, a mirror) are not the task's outcome:
    the task already has one, and a second entry would break the contract.
    """

    async def mirror(message: Message) -> list[Outgoing]:
        if message.payload.get("stage") not in stages:
            return []
        return [Outgoing(error_contract(message.payload), list=list_key)]

    return mirror
