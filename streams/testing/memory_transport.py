"""The in-memory transport: streams.transport's contract over a MemoryBroker, for tests.

``MemoryTransport(broker, pipeline)`` stands where streams.redis.transport's
RedisTransport stands; ``for_stage`` gives a stage runner its
``MemoryStageTransport``. The semantics are Redis's (tests/conformance runs one
suite against both): deliveries come from consumer groups, a commit acks and
writes atomically and fences as ms_commit does, claims change fence tokens.
Streams keep their logical names: ``address(name)`` is ``name`` itself.

Every call yields to the event loop once, as a network round trip would, and
may fail with ``MemoryOutage`` when the broker is told to (``fail_next``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Container, Mapping, Sequence
from typing import TypeVar

import streams.testing.memory_functions as functions
from streams.delivery import Delivery, to_delivery
from streams.names import checked
from streams.rates import Admission, Limiter
from streams.settings import Settings
from streams.stage import Stage
from streams.testing.clock import ManualClock
from streams.testing.memory_broker import ERRORS_STREAM, MemoryBroker, MemoryOutage
from streams.testing.memory_limiter import MemoryRate
from streams.testing.memory_streams import EntryId, Group, format_id
from streams.transition import Transition, Verdict
from streams.transport import Cancel

T = TypeVar("T")
TRANSIENT: tuple[type[BaseException], ...] = (MemoryOutage,)


class MemoryTransport:
    """Pipeline ``pipeline`` on ``broker``; ``settings`` gives the retention (default Settings())."""

    def __init__(self, broker: MemoryBroker, pipeline: str, settings: Settings | None = None) -> None:
        self.broker, self.settings = broker, settings or Settings(consumer="memory")
        self._pipeline = checked("pipeline", pipeline)
        self.woken = False

    @property
    def pipeline(self) -> str:
        return self._pipeline

    def for_stage(self, stage: Stage, consumer: str) -> MemoryStageTransport:
        return MemoryStageTransport(self, stage, consumer)

    def limiter(self, stage: Stage) -> Limiter:
        """``stage.rate`` on the broker's clock; with a ManualClock, waits last until the test advances it."""
        rate = stage.rate_limit
        if rate is None:
            raise ValueError(f"stage {stage.name!r} has no rate")
        clock = self.broker.clock
        shared = MemoryRate(self.broker.rates, f"stage.{stage.name}", rate, clock, stage.rate_horizon)
        sleep = clock.sleep if isinstance(clock, ManualClock) else asyncio.sleep
        return Admission(shared, sleep, stage.rate_horizon)

    def wake(self) -> None:
        """End every blocked ``read_new`` now, and block no more: for runners being stopped.

        A Redis read waits out its block time (up to half a second) before a
        stopping runner notices; tests need not.
        """
        self.woken = True
        self.broker.changed()


class MemoryStageTransport:
    transient = TRANSIENT

    def __init__(self, parent: MemoryTransport, stage: Stage, consumer: str) -> None:
        self.parent, self.broker, self.stage, self.consumer = parent, parent.broker, stage, consumer
        self.source, self.group = checked("stream", stage.source), stage.group
        self._fence = (self.source, self.group, consumer)

    def _group(self) -> Group:
        return self.broker.stream(self.source).group(self.group)

    def address(self, stream: str) -> str:
        return checked("stream", stream)

    async def _call(self, name: str, work: Callable[[], T]) -> T:
        """Run ``work`` as one round trip of call ``name``: a yield, then the work, failing where told."""
        await asyncio.sleep(0)
        lost_reply = self.broker.enter(name)
        result = work()
        if lost_reply:
            raise MemoryOutage(f"memory broker: injected outage ({name}, applied)")
        return result

    def _deliveries(self, claimed: functions.Claimed) -> list[Delivery]:
        return [to_delivery(self.stage.source, i, flat, n) for i, flat, n in claimed]

    # -- reading and claiming --------------------------------------------------

    async def join(self) -> None:
        def work() -> None:
            self._group().consumers.add(self.consumer)
        await self._call("join", work)

    async def token(self) -> str:
        return await self._call("token", lambda: self.broker.fences.get(self._fence, ""))

    async def own_pending(self, page: int) -> AsyncIterator[list[Delivery]]:
        after: str | None = None
        while True:
            claimed = await self._call("own_pending", functools.partial(
                functions.claim_mine, self.broker, self.source, self.group, self.consumer, after, page))
            if not claimed:
                return
            yield self._deliveries(claimed)
            after = claimed[-1][0]

    async def read_new(self, count: int, block_ms: int) -> list[Delivery]:
        """As XREADGROUP ... BLOCK: waits on the broker's changes for ``block_ms`` (0: until one arrives)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000 if block_ms else None
        stream = self.broker.stream(self.source)
        while True:
            read = await self._call("read_new", lambda: stream.read_group(self.group, self.consumer, count,
                                                              self.broker.now_ms()))
            left = None if deadline is None else deadline - loop.time()
            if read or self.parent.woken or (left is not None and left <= 0):
                break
            await self.broker.wait_change(left)
        return [to_delivery(self.stage.source, format_id(i), flat, 1) for i, flat in read]

    async def claim_lost(self, held: Container[str]) -> list[Delivery]:
        def work() -> functions.Claimed:
            mine = self._group().held_by(self.consumer)
            lost = [format_id(i) for i in mine if format_id(i) not in held]
            return functions.claim_lost(self.broker, self.source, self.group, self.consumer, lost)
        return self._deliveries(await self._call("claim_lost", work))

    async def consumers(self) -> list[str]:
        return await self._call("consumers", lambda: sorted(self._group().consumers))

    async def lease(self, mode: str, ttl_ms: int) -> bool:
        return await self._call("lease", lambda: functions.lease(self.broker, self.source, self.group,
                                                                 self.consumer, mode, ttl_ms))

    async def claim_owned(self, start: str, count: int) -> list[Delivery] | None:
        claimed = await self._call("claim_owned", lambda: functions.claim_owned(
            self.broker, self.source, self.group, self.consumer, None if start == "-" else start, count))
        return None if claimed is None else self._deliveries(claimed)

    async def read_owned(self, count: int) -> list[Delivery] | None:
        def work() -> list[tuple[EntryId, list[bytes]]] | None:
            if not functions.holds_lease(self.broker, self.source, self.group, self.consumer):
                return None
            stream = self.broker.stream(self.source)
            return stream.read_group(self.group, self.consumer, count, self.broker.now_ms())
        read = await self._call("read_owned", work)
        if read is None:
            return None
        return [to_delivery(self.stage.source, format_id(i), flat, 1) for i, flat in read]

    async def live_consumers(self) -> list[str]:
        return await self._call("live_consumers", lambda: sorted(
            c for c in self._group().consumers if self.broker.alive(self.group, c)))

    async def claim_dead(self, consumer: str, count: int) -> list[Delivery]:
        return self._deliveries(await self._call("claim_dead", lambda: functions.claim_dead(
            self.broker, self.source, self.group, consumer, self.consumer, count)))

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Delivery]:
        return self._deliveries(await self._call("claim_stale", lambda: functions.claim_stale(
            self.broker, self.source, self.group, self.consumer, min_idle_ms, count)))

    async def renew(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        return await self._call("renew", lambda: functions.renew(self.broker, self.source, self.group,
                                                        self.consumer, ids))

    # -- committing ------------------------------------------------------------

    async def commit(self, batch: Sequence[Transition], token: str, suspect: Sequence[int] = ()) -> Verdict:
        return await self._call("commit", lambda: functions.commit(
            self.broker, self.source, self.group, self.consumer, self.stage.name, batch, token, suspect,
            self.parent.settings.events_maxlen))

    # -- upkeep ----------------------------------------------------------------

    async def heartbeat(self, ttl: float, holding: Mapping[str, int] | None = None) -> None:
        def work() -> None:
            self.broker.heartbeats[(self.group, self.consumer)] = self.broker.now_ms() + int(ttl * 1000)
            self.broker.holding[(self.group, self.consumer)] = dict(holding or {})
        await self._call("heartbeat", work)

    async def promote_due(self) -> int:
        return await self._call("promote_due", lambda: functions.promote(self.broker, self.source))

    async def trim(self) -> None:
        await self._call("trim", self._trim)

    def _trim(self) -> None:
        """Acknowledged entries, then the DLQ's age and count bounds, then the unread errors cap."""
        s, broker = self.parent.settings, self.broker
        functions.trim(broker, self.source)
        dlq = broker.dead_letters.get(self.stage.name)
        if dlq is not None and s.dlq_max_age:
            dlq.trim_below((int((broker.clock() - s.dlq_max_age) * 1000), 0))
        if dlq is not None and s.dlq_max_len:
            dlq.trim_to(s.dlq_max_len)
        errors = broker.streams.get(ERRORS_STREAM)
        if errors is not None and s.errors_max_len and not errors.groups:
            errors.trim_to(s.errors_max_len)

    async def paused(self) -> bool:
        return await self._call("paused", lambda: self.stage.name in self.broker.paused)

    async def cancels(self) -> bool:
        return await self._call("cancels", lambda: bool(self.broker.cancels))

    async def cancelled(self, request_ids: Sequence[str]) -> Mapping[str, Cancel]:
        found = await self._call("cancelled", lambda: self.broker.cancelled(request_ids))
        return {rid: Cancel(c["by"], c["reason"]) for rid, c in found.items()}

    async def leave(self) -> None:
        def work() -> None:
            self.broker.heartbeats.pop((self.group, self.consumer), None)
            self.broker.holding.pop((self.group, self.consumer), None)
        await self._call("leave", work)
