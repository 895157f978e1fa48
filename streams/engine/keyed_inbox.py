"""KeyedInbox: an Inbox that hands out one entry per key at a time, in the order held.

A keyed stage's partition (Stage.key) must handle the entries of one key one
after another, in publish order, and different keys in parallel. An entry's
key is busy from the moment a worker takes it until its outcome is committed
(``release``, which the runner calls after the commit's reply), not merely
until its handler returns: the next entry of the key could otherwise commit
first, and a crash in between would leave the later outcome written before
the earlier one. Entries that did not decode have no key: each is its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from streams.delivery import Delivery
from streams.engine.inbox import Inbox


class KeyedInbox(Inbox):
    def __init__(self, capacity: int, key_of: Callable[[Delivery], str]) -> None:
        super().__init__(capacity)
        self._key_of = key_of
        self._busy: dict[str, str] = {}  # key -> the entry taken and not yet released
        self._keys: dict[str, str] = {}  # entry id -> its key, for entries taken

    def ready(self) -> bool:
        """Whether a queued entry's key is free (``take`` would return at once)."""
        return any(self._key_of(d) not in self._busy for d in self._queue)

    async def take(self, limit: int = 1) -> list[Delivery]:
        """Up to ``limit`` queued deliveries of keys not busy, the first queued of each; [] once closed."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.ready() or self.closed)
            if self.closed:
                return []
            taken: list[Delivery] = []
            rest: deque[Delivery] = deque()
            blocked: set[str] = set()  # keys busy, or met already in this scan: later entries wait
            for d in self._queue:
                key = self._key_of(d)
                if len(taken) < limit and key not in self._busy and key not in blocked:
                    taken.append(d)
                    self._busy[key], self._keys[d.id] = d.id, key
                else:
                    rest.append(d)
                blocked.add(key)
            self._queue = rest
            return taken

    async def release(self, ids: Iterable[str]) -> None:
        """Forget committed entries; their keys are free for the next entry."""
        ids = list(ids)
        for i in ids:
            key = self._keys.pop(i, None)
            if key is not None and self._busy.get(key) == i:
                del self._busy[key]
        await super().release(ids)
