"""MemoryBroker: the in-process state of one pipeline, as Redis holds it for the Redis transport.

One broker stands for one pipeline's keyspace (streams.redis.keys), by
logical name instead of by key:

=====================  =============================================================
attribute              Redis counterpart
=====================  =============================================================
``streams``            ``stream:<name>`` with their consumer groups ("errors" too)
``dead_letters``       ``dlq:<stage>``
``delayed``            ``delayed:<name>``: member (the entry's fields) -> due ms
``lists``              lists named exactly (``Outgoing(list=...)``)
``status``             status buckets: request_id -> {"stage", "state", "entry", "at"[, "detail"]
                       [, "trail": earlier records, oldest first]} (one bucket: no trail restarts)
``counts``             ``counts``: "<stage>/<state>" -> transitions recorded so far
``events``             ``events``: {"stage", "at", "t": [[request_id, state, entry], ...]}
``heartbeats``         ``hb:<group>:<consumer>``: when it expires (ms)
``fences``             ``fences``: (stream, group, consumer) -> token
``seen``               dedup buckets: request_id -> (first entry id, when, ms)
``paused``             ``paused``: stage -> {"by", "at"} (``pause``/``resume``, as
                       streams.redis.control)
``cancels``            ``cancels``: request_id -> {"by", "reason", "at", "until"} (``cancel``)
``rates``              ``ratelimit:stage.<stage>``: "stage.<stage>" -> the next slot (GCRA,
                       unix us; streams.testing.memory_limiter)
=====================  =============================================================

Everything reads the time from ``clock`` (unix seconds; pass a
streams.testing.ManualClock to move it by hand). ``fail_next`` makes the next
calls of the transports and publishers on this broker raise ``MemoryOutage``,
as an outage would. Every change wakes ``wait_change``: blocked reads and the
harness wait on it, never on a timer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from streams.testing.memory_streams import EntryId, Stream, format_id
from streams.transition import bounded_detail

Done = tuple[str, str, str]  # request_id, state, entry id
ERRORS_STREAM = "errors"  # the logical name of error records (streams.redis.keys.ERRORS)
TRAIL_BYTES = 16384  # TRAIL_BYTES in millstream.lua: the text of a trail's records and commas


def _bounded(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``trail`` less its oldest records while its text exceeds TRAIL_BYTES (the newest stays)."""
    sizes = [len(orjson.dumps(r)) + 1 for r in trail]
    total = sum(sizes) - 1
    cut = 0
    while total > TRAIL_BYTES and cut < len(trail) - 1:
        total -= sizes[cut]
        cut += 1
    return trail[cut:]


class MemoryOutage(ConnectionError):
    """A call to the memory transport failed as one to an unreachable server would (a transient failure)."""


class MemoryBroker:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.streams: dict[str, Stream] = {}
        self.dead_letters: dict[str, Stream] = {}
        self.delayed: dict[str, dict[tuple[str, ...], int]] = {}
        self.lists: dict[str, list[bytes]] = {}
        self.status: dict[str, dict[str, Any]] = {}
        self.counts: Counter[str] = Counter()
        self.events: deque[dict[str, Any]] = deque()
        self.heartbeats: dict[tuple[str, str], int] = {}
        self.holding: dict[tuple[str, str], dict[str, int]] = {}  # run:<group>:<consumer>: entry -> read ms
        self.fences: dict[tuple[str, str, str], str] = {}
        self.seen: dict[str, tuple[str, int]] = {}
        self.paused: dict[str, dict[str, Any]] = {}
        self.cancels: dict[str, dict[str, Any]] = {}
        self.rates: dict[str, int] = {}
        self.leases: dict[tuple[str, str], tuple[str, int]] = {}  # (stream, group) -> (consumer, until ms)
        self._fence_serial = 0
        self._failing = 0
        self._fail_applied = False
        self._fail_only = ""
        self._watchers: list[asyncio.Future[None]] = []

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- state -----------------------------------------------------------------

    def stream(self, name: str) -> Stream:
        """Stream ``name``, created empty when missing (as XADD and MKSTREAM do)."""
        found = self.streams.get(name)
        if found is None:
            found = self.streams[name] = Stream()
        return found

    def dead_letter_stream(self, stage: str) -> Stream:
        found = self.dead_letters.get(stage)
        if found is None:
            found = self.dead_letters[stage] = Stream()
        return found

    def add(self, stream: str, flat: list[bytes]) -> str:
        """XADD ``flat`` to ``stream``; return the new entry's id."""
        return format_id(self.stream(stream).add(flat, self.now_ms()))

    def record(self, stage: str, done: list[Done], events_maxlen: int, details: Sequence[bytes] = ()) -> None:
        """Status records, counts and one event for transitions ``done``, as the Lua writes them.

        ``details``: the detail of each transition of ``done`` (b"": none), if any has one.
        """
        if not done:
            return
        now = self.now_ms()
        for k, (rid, state, entry) in enumerate(done):
            record: dict[str, Any] = {"stage": stage, "state": state, "entry": entry, "at": now}
            if details and details[k]:
                record["detail"] = orjson.loads(bounded_detail(details[k]))
            old = self.status.get(rid)
            if old is not None:
                own = {key: value for key, value in old.items() if key != "trail"}
                record["trail"] = _bounded([*old.get("trail", ()), own])
            self.status[rid] = record
            self.counts[f"{stage}/{state}"] += 1
        self.events.append({"stage": stage, "at": now, "t": [list(d) for d in done]})
        while len(self.events) > events_maxlen:
            self.events.popleft()

    def bump_fences(self, stream: str, group: str, owners: set[str]) -> None:
        """A fresh fence token for each consumer a claim took entries from."""
        if not owners:
            return
        self._fence_serial += 1
        token = f"{self.now_ms()}-{self._fence_serial}"
        for owner in owners:
            self.fences[(stream, group, owner)] = token

    def alive(self, group: str, consumer: str) -> bool:
        """Whether the heartbeat of ``consumer`` of ``group`` has not expired."""
        expiry = self.heartbeats.get((group, consumer))
        return expiry is not None and expiry > self.now_ms()

    def oldest_pending(self, stream: str, group: str) -> EntryId | None:
        found = self.streams.get(stream)
        pending = found.groups[group].pending if found and group in found.groups else {}
        return min(pending) if pending else None

    # -- pausing (streams.redis.control) ----------------------------------------

    def pause(self, stage: str, by: str = "test", events_maxlen: int = 10_000) -> bool:
        """Pause ``stage`` for every consumer, with its event; False if it already was."""
        if stage in self.paused:
            return False
        at = self.now_ms()
        self.paused[stage] = {"by": by, "at": at}
        self._control_event(stage, at, "paused", by, events_maxlen)
        return True

    def resume(self, stage: str, by: str = "test", events_maxlen: int = 10_000) -> bool:
        """Resume ``stage``, with its event; False if it was not paused."""
        if self.paused.pop(stage, None) is None:
            return False
        self._control_event(stage, self.now_ms(), "resumed", by, events_maxlen)
        return True

    # -- cancelling (streams.redis.control) ---------------------------------------

    def cancel(self, request_id: str, by: str = "test", reason: str = "", ttl: float = 3600.0,
               events_maxlen: int = 10_000) -> bool:
        """Cancel task ``request_id`` for ``ttl`` seconds, with its event; False if it already was."""
        at = self.now_ms()
        if self.cancels.get(request_id, {}).get("until", 0) > at:
            return False
        self.cancels = {rid: c for rid, c in self.cancels.items() if c["until"] > at}
        self.cancels[request_id] = {"by": by, "reason": reason, "at": at, "until": at + int(ttl * 1000)}
        self._control_event("cancel", at, "cancelled", by, events_maxlen, request_id=request_id)
        return True

    def cancelled(self, request_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Those of ``request_ids`` cancelled now."""
        now = self.now_ms()
        return {rid: c for rid in request_ids if (c := self.cancels.get(rid)) and c["until"] > now}

    def _control_event(self, stage: str, at: int, control: str, by: str, events_maxlen: int,
                       **more: str) -> None:
        self.events.append({"stage": stage, "at": at, "control": control, "by": by, **more})
        while len(self.events) > events_maxlen:
            self.events.popleft()
        self.changed()

    # -- outages ---------------------------------------------------------------

    def fail_next(self, calls: int = 1, *, applied: bool = False, only: str = "") -> None:
        """Make the next ``calls`` transport and publisher calls raise MemoryOutage.

        ``applied``: each call does its work first and fails after (a reply lost
        on a dropped connection), else it fails before doing anything. ``only``
        names the one method whose calls fail ("commit", "read_new", "publish",
        ...); other calls go through.
        """
        self._failing, self._fail_applied, self._fail_only = calls, applied, only

    @property
    def outages_left(self) -> int:
        """How many of the calls ``fail_next`` asked for have not failed yet."""
        return self._failing

    def enter(self, call: str) -> bool:
        """Start call ``call``: raise MemoryOutage now, or return whether to raise it once applied."""
        if not self._failing or (self._fail_only and call != self._fail_only):
            return False
        self._failing -= 1
        if not self._fail_applied:
            raise MemoryOutage(f"memory broker: injected outage ({call})")
        return True

    # -- waiting ---------------------------------------------------------------

    def changed(self) -> None:
        """Wake everything waiting in ``wait_change``: called after every change."""
        watchers, self._watchers = self._watchers, []
        for future in watchers:
            if not future.done():
                future.set_result(None)

    async def wait_change(self, seconds: float | None) -> None:
        """Return at the next change, or after ``seconds`` (real time) at the latest."""
        future = asyncio.get_running_loop().create_future()
        self._watchers.append(future)
        try:
            await asyncio.wait([future], timeout=seconds)
        finally:
            if not future.done():
                future.cancel()
                self._watchers.remove(future)
