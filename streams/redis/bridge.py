"""The Redis runner of a list ingress (streams.bridge): ``ms_ingress`` moves list items into a stream.

One ``ms_ingress`` call pops up to ``ListIngress.batch`` items, and at most
``max_call_bytes`` plus one item, so it holds Redis for a few milliseconds
(docs/BENCHMARKS.md). When the list is empty the runner waits with
``BLMOVE list list LEFT LEFT``, which blocks until an item arrives and leaves
it where it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from streams.bridge import ListIngress
from streams.names import checked
from streams.pipeline import ID_FIELDS
from streams.redis.keys import Keys
from streams.redis.library import fcall

log = logging.getLogger("millstream.bridge")

MAX_CALL_BYTES = 256 * 1024  # items' bytes after which one ms_ingress call stops popping


class IngressRunner:
    """Moves the items of one list into its stream until stopped.

    ``max_item_bytes`` is the payload limit (Settings.max_payload_bytes): a
    larger item becomes an error record carrying the ``id_fields``
    (Pipeline.id_fields) found in its first 4 KiB.
    """

    def __init__(self, redis: Redis, keys: Keys, ingress: ListIngress, status_ttl: float,
                 events_maxlen: int, max_item_bytes: int = 1024 * 1024,
                 max_call_bytes: int = MAX_CALL_BYTES, *, id_fields: Sequence[str] = ID_FIELDS) -> None:
        self.redis, self.keys, self.ingress = redis, keys, ingress
        self.status_ttl_ms, self.events_maxlen = int(status_ttl * 1000), events_maxlen
        self.max_item_bytes, self.max_call_bytes = max_item_bytes, max_call_bytes
        self.id_fields = tuple(checked("id field", name) for name in id_fields)
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
            *self.id_fields,
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
