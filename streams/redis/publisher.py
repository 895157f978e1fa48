"""Publishing tasks: idempotent by request_id, batched in one round trip.

A payload with a ``request_id`` seen within the dedup window returns the first
entry's id and adds nothing. Without one, a fresh id is generated, so every
entry has a request id that later stages, retries and replays keep.

A task may have a priority (streams.priority) on a stream that a stage reads by
priority (``prioritized``, from Pipeline.prioritized): it goes to that level's
lane, in the same atomic call as the batch's other tasks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from streams.codec import encode_payload, envelope
from streams.priority import Level, routed
from streams.redis.keys import Keys
from streams.redis.library import fcall
from streams.settings import Settings

Item = tuple[Mapping[str, Any], str | None] | tuple[Mapping[str, Any], str | None, Level | None]
"""What publish_many takes per task: (payload, request_id) or (payload, request_id, priority)."""


@dataclass(frozen=True, slots=True)
class Publisher:
    redis: Redis
    keys: Keys
    # The defaults of Settings (a unit test keeps them equal); from_settings is the usual way.
    max_payload_bytes: int = 1024 * 1024
    dedup_window_ms: int = 3_600_000
    status_ttl_ms: int = 7_200_000
    events_maxlen: int = 10_000
    prioritized: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, redis: Redis, keys: Keys, settings: Settings,
                      prioritized: frozenset[str] = frozenset()) -> Publisher:
        return cls(
            redis, keys, settings.max_payload_bytes, int(settings.dedup_window * 1000),
            int(settings.status_ttl * 1000), settings.events_maxlen, prioritized,
        )

    async def publish(
        self, stream: str, payload: Mapping[str, Any], request_id: str | None = None,
        priority: Level | None = None,
    ) -> str:
        """Append ``payload`` to logical stream ``stream``; return the entry id."""
        return (await self.publish_many(stream, [(payload, request_id)], priority))[0]

    async def publish_many(
        self, stream: str, items: Sequence[Item], priority: Level | None = None,
    ) -> list[str]:
        """Publish many (payload, request_id[, priority]) items in one atomic call; ids in order.

        An item's own priority overrides ``priority``. Every payload is encoded (and
        size-checked) and every priority checked before anything is sent, so one bad
        item fails the whole call and publishes none of it.
        """
        if not items:
            return []
        now = int(time.time() * 1000)
        keys = [self.keys.stream(stream), self.keys.events]
        args: list[bytes | str | int] = [
            now, self.dedup_window_ms, self.status_ttl_ms, self.events_maxlen, "publish",
            self.keys.status_prefix, len(items),
        ]
        for payload, request_id, *own in items:
            data = encode_payload(payload, self.max_payload_bytes)
            rid = request_id or uuid.uuid4().hex
            level = own[0] if own and own[0] is not None else priority
            keys.append(self.keys.stream(routed(stream, level, self.prioritized)))
            fields = envelope(data, rid, 1, now)
            args += [rid, 1 if request_id else 0, len(fields), *fields]
        ids = await fcall(self.redis, "ms_publish", keys, args)
        return [i.decode() for i in ids]
