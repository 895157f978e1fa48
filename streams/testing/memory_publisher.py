"""MemoryPublisher: streams.redis.publisher.Publisher's calls, onto a MemoryBroker.

As ms_publish does: a payload whose ``request_id`` was published within the
dedup window returns the first entry's id and adds nothing; one without gets a
fresh id; every new entry's status is "queued" (stage "publish") and the batch
is one event. Payloads are encoded, and size-checked, before anything is added.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from streams.codec import encode_payload, envelope
from streams.names import checked
from streams.priority import Level, routed
from streams.redis.publisher import Item
from streams.settings import Settings
from streams.testing.memory_broker import Done, MemoryBroker, MemoryOutage
from streams.transition import State


class MemoryPublisher:
    def __init__(self, broker: MemoryBroker, settings: Settings | None = None,
                 prioritized: frozenset[str] = frozenset()) -> None:
        s = settings or Settings(consumer="memory")
        self.broker, self.prioritized = broker, prioritized
        self.max_payload_bytes, self.dedup_window_ms = s.max_payload_bytes, int(s.dedup_window * 1000)
        self.events_maxlen = s.events_maxlen

    async def publish(self, stream: str, payload: Mapping[str, Any], request_id: str | None = None,
                      priority: Level | None = None) -> str:
        """Append ``payload`` to logical stream ``stream``; return the entry id."""
        return (await self.publish_many(stream, [(payload, request_id)], priority))[0]

    async def publish_many(self, stream: str, items: Sequence[Item],
                           priority: Level | None = None) -> list[str]:
        """Publish many (payload, request_id[, priority]) items atomically; ids in order."""
        checked("stream", stream)
        encoded = [(encode_payload(p, self.max_payload_bytes), rid,
                    routed(stream, own[0] if own and own[0] is not None else priority, self.prioritized))
                   for p, rid, *own in items]
        await asyncio.sleep(0)
        lost_reply = self.broker.enter("publish")
        now = self.broker.now_ms()
        ids: list[str] = []
        done: list[Done] = []
        for data, request_id, target in encoded:
            seen = self.broker.seen.get(request_id) if request_id else None
            if seen is not None and now - seen[1] < self.dedup_window_ms:
                ids.append(seen[0])
                continue
            rid = request_id or uuid.uuid4().hex
            entry = self.broker.add(target, [f.encode() for f in envelope(data, rid, 1, now)])
            if request_id:
                self.broker.seen[rid] = (entry, now)
            done.append((rid, str(State.QUEUED), entry))
            ids.append(entry)
        self.broker.record("publish", done, self.events_maxlen)
        self.broker.changed()
        if lost_reply:
            raise MemoryOutage("memory broker: injected outage (publish, applied)")
        return ids
