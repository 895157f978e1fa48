"""Streams and consumer groups in memory, as Redis keeps them.

These are the primitives the memory functions (memory_functions.py) build on,
each the counterpart of one Redis command: ``add`` (XADD *), ``read_group``
(XREADGROUP >), ``claim`` (XCLAIM with min-idle 0), ``ack`` (XACK), ``delete``
(XDEL), ``trim_below`` (XTRIM MINID), ``trim_to`` (XTRIM MAXLEN). Entry ids are
Redis's ``<ms>-<seq>``, kept as (ms, seq) pairs so they sort as Redis sorts them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

EntryId = tuple[int, int]
Entry = tuple[EntryId, list[bytes]]


def parse_id(text: str) -> EntryId:
    """(ms, seq) of an entry id written ``<ms>-<seq>``; raises ValueError on anything else."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(entry: EntryId) -> str:
    return f"{entry[0]}-{entry[1]}"


@dataclass(slots=True)
class Pending:
    """One entry of a group's pending list: who holds it, how often delivered, when last."""

    consumer: str
    deliveries: int
    delivered_ms: int


@dataclass(slots=True)
class Group:
    """A consumer group: what it has delivered, what its consumers hold (the PEL), who they are."""

    last_delivered: EntryId = (0, 0)
    pending: dict[EntryId, Pending] = field(default_factory=dict)
    consumers: set[str] = field(default_factory=set)

    def held_by(self, consumer: str) -> list[EntryId]:
        """The ids ``consumer`` holds, oldest first."""
        return sorted(i for i, p in self.pending.items() if p.consumer == consumer)

    def holds(self, consumer: str, entry: EntryId) -> bool:
        found = self.pending.get(entry)
        return found is not None and found.consumer == consumer


class Stream:
    """An append-only log of entries (flat field lists) with consumer groups."""

    def __init__(self) -> None:
        self.ids: list[EntryId] = []  # sorted: ids only grow
        self.entries: dict[EntryId, list[bytes]] = {}
        self.last: EntryId = (0, 0)
        self.groups: dict[str, Group] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, flat: list[bytes], now_ms: int) -> EntryId:
        """Append ``flat`` under a new id, as XADD * does (the clock's ms, or the last ms if later)."""
        entry = (now_ms, 0) if now_ms > self.last[0] else (self.last[0], self.last[1] + 1)
        self.ids.append(entry)
        self.entries[entry] = list(flat)
        self.last = entry
        return entry

    def group(self, name: str) -> Group:
        """Group ``name``, created at the stream's start when missing (XGROUP CREATE ... 0)."""
        found = self.groups.get(name)
        if found is None:
            found = self.groups[name] = Group()
        return found

    def read_group(self, group: str, consumer: str, count: int, now_ms: int) -> list[Entry]:
        """Up to ``count`` entries the group never delivered, now pending for ``consumer``."""
        g = self.group(group)
        g.consumers.add(consumer)
        start = bisect.bisect_right(self.ids, g.last_delivered)
        taken = self.ids[start:start + count]
        for entry in taken:
            g.pending[entry] = Pending(consumer, 1, now_ms)
        if taken:
            g.last_delivered = taken[-1]
        return [(entry, list(self.entries[entry])) for entry in taken]

    def claim(self, group: str, consumer: str, ids: list[EntryId], now_ms: int,
              *, just_ids: bool = False) -> list[Entry]:
        """XCLAIM ``ids`` for ``consumer`` (min idle 0): the pending ones move to it, idle reset.

        Deliveries count up unless ``just_ids`` (XCLAIM JUSTID). An id pending but
        deleted from the stream is dropped from the pending list and not returned,
        as Redis 7 does.
        """
        g = self.group(group)
        g.consumers.add(consumer)
        out: list[Entry] = []
        for entry in ids:
            held = g.pending.get(entry)
            if held is None:
                continue
            if entry not in self.entries:
                del g.pending[entry]
                continue
            held.consumer, held.delivered_ms = consumer, now_ms
            if not just_ids:
                held.deliveries += 1
            out.append((entry, list(self.entries[entry])))
        return out

    def ack(self, group: str, ids: list[EntryId]) -> int:
        g = self.groups.get(group)
        if g is None:
            return 0
        return sum(g.pending.pop(entry, None) is not None for entry in ids)

    def delete(self, entry: EntryId) -> bool:
        """XDEL: the entry goes, pending lists keep naming it (claims drop it later)."""
        if self.entries.pop(entry, None) is None:
            return False
        self.ids.remove(entry)
        return True

    def trim_below(self, floor: EntryId) -> int:
        """XTRIM MINID ``floor``: drop every entry with a smaller id; return how many."""
        cut = bisect.bisect_left(self.ids, floor)
        return self._drop_first(cut)

    def trim_to(self, max_len: int) -> int:
        """XTRIM MAXLEN ``max_len`` (exact): keep the newest ``max_len`` entries."""
        return self._drop_first(max(0, len(self.ids) - max_len))

    def _drop_first(self, n: int) -> int:
        for entry in self.ids[:n]:
            del self.entries[entry]
        del self.ids[:n]
        return n
