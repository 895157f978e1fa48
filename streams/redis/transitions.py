"""Building and committing transitions: one FCALL ms_commit per batch.

The batch travels as one JSON argument: redis-py packs arguments one by one in
Python, and a transition has a dozen, so one blob per batch is several times
cheaper than flat arguments (measured in docs/BENCHMARKS.md).

A transition says what happens to one source entry: the XADDs and ZADDs it
causes, and the state recorded in the task's status key and the events
stream. ``Committer.commit`` applies a batch atomically; an entry that is no
longer pending for this consumer is skipped whole (fencing), and reported so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from streams.keys import Keys
from streams.redis.library import fcall


@dataclass(frozen=True, slots=True)
class Xadd:
    key: str
    fields: Sequence[str]


@dataclass(frozen=True, slots=True)
class Zadd:
    key: str
    score: int
    member: str


@dataclass(frozen=True, slots=True)
class Rpush:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Transition:
    entry_id: str
    request_id: str
    state: str
    ops: Sequence[Xadd | Zadd | Rpush]


class _KeyList:
    """KEYS of one call, each key once; ``index`` gives its 1-based position."""

    def __init__(self, *fixed: str) -> None:
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        for key in fixed:
            self.index(key)

    def index(self, key: str) -> int:
        found = self._index.get(key)
        if found is None:
            self.keys.append(key)
            found = self._index[key] = len(self.keys)
        return found


def _op(op: Xadd | Zadd | Rpush, keys: _KeyList) -> list[object]:
    if isinstance(op, Xadd):
        return ["x", keys.index(op.key), op.fields]
    if isinstance(op, Rpush):
        return ["l", keys.index(op.key), op.value]
    return ["z", keys.index(op.key), str(op.score), op.member]


@dataclass(frozen=True, slots=True)
class Committer:
    """Commits transitions of entries read by ``consumer`` of ``group`` from ``source``."""

    redis: Redis
    keys: Keys
    source: str
    group: str
    consumer: str
    stage: str
    status_ttl_ms: int
    events_maxlen: int
    max_held: int

    async def commit(self, batch: Sequence[Transition]) -> list[bool]:
        """Apply ``batch`` atomically; True per entry committed, False per entry fenced off."""
        if not batch:
            return []
        keys = _KeyList(self.source, self.keys.events)
        spec = [[t.entry_id, t.request_id, t.state, [_op(op, keys) for op in t.ops]] for t in batch]
        args = [
            self.group, self.consumer, int(time.time() * 1000), self.status_ttl_ms, self.events_maxlen,
            self.stage, self.keys.status_prefix, orjson.dumps(spec), self.max_held + len(batch),
        ]
        results = await fcall(self.redis, "ms_commit", keys.keys, args)
        return [bool(r) for r in results]
