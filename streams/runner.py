"""StageRunner: read → handle → commit, plus the upkeep that keeps delivery honest.

One runner serves one stage in one process, as consumer ``settings.consumer``:

* read: own pending entries first (an earlier run's), then new ones, never
  holding more than ``max_in_flight`` (the Inbox);
* work: ``concurrency`` loops take deliveries and handle them (handling.py);
* commit: one loop applies finished transitions in batches, one FCALL each;
  an entry is acknowledged only in the call that writes its outcome;
* upkeep: heartbeat and lease renewal, claiming entries of dead or stalled
  consumers, moving due retries back, trimming acknowledged entries;
* stop: stop reading, hand back unstarted entries at once, let handlers finish
  within the grace period (hand back the rest), commit, drop the heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis

from streams.delivery import Delivery
from streams.handling import Handling
from streams.inbox import Inbox
from streams.keys import Keys
from streams.message import Middleware
from streams.metrics import Metrics
from streams.outcomes import Outcomes
from streams.pipeline import chain
from streams.redis.consumer import GroupConsumer
from streams.redis.maintenance import promote_due, trim_acknowledged
from streams.redis.transitions import Committer, Transition
from streams.settings import Settings
from streams.stage import Stage

log = logging.getLogger("millstream.runner")
READ_BLOCK_MS = 500
COMMIT_BATCH = 500


class StageRunner:
    def __init__(self, redis: Redis, keys: Keys, stage: Stage, settings: Settings,
                 metrics: Metrics, middleware: Sequence[Middleware] = ()) -> None:
        self.redis, self.keys, self.stage, self.settings = redis, keys, stage, settings
        self.labels = (keys.pipeline, stage.name)
        self.metrics = metrics
        self.inbox = Inbox(stage.max_in_flight)
        self.group = GroupConsumer(redis, keys, stage.source, stage.group, settings.consumer)
        self.committer = Committer(
            redis, keys, keys.stream(stage.source), stage.group, settings.consumer, stage.name,
            int(settings.status_ttl * 1000), settings.events_maxlen,
        )
        self.outcomes = Outcomes(keys, stage, settings.consumer, settings.max_payload_bytes)
        handler = stage.processor if stage.batched else chain(stage.processor, middleware)  # type: ignore[arg-type]
        self.handling = Handling(stage, handler, self.outcomes, metrics, keys.pipeline)
        self._commits: asyncio.Queue[Transition] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._reading = False
        self.started = asyncio.Event()

    def stop(self) -> None:
        """Ask the runner to shut down gracefully; ``run`` returns when it has."""
        self._stop.set()

    async def run(self) -> None:
        await self.group.ensure_group()
        await self._heartbeat()
        async with asyncio.TaskGroup() as tg:
            upkeep = [tg.create_task(self._every(i, f)) for i, f in self._upkeep_jobs()]
            committer = tg.create_task(self._commit_loop())
            workers = [tg.create_task(self._work()) for _ in range(self.stage.concurrency)]
            reader = tg.create_task(self._read())
            self.started.set()
            await self._stop.wait()
            await self._shutdown(reader, workers)
            await self._commits.join()
            for task in [*upkeep, committer]:
                task.cancel()
        await self.redis.delete(self.keys.heartbeat(self.stage.group, self.settings.consumer))

    # -- read ---------------------------------------------------------------

    async def _read(self) -> None:
        self._reading = True
        async for page in self.group.own_pending(self.stage.max_in_flight):
            await self._hold(page)
        self._reading = False
        while not self._stop.is_set():
            room = await self.inbox.room()
            self._reading = True
            try:
                batch = await self.group.read_new(min(room, self.stage.batch_size), READ_BLOCK_MS)
                await self._hold(batch)
            except (ConnectionError, OSError) as error:
                log.warning("stage %s: read failed (%s); retrying", self.stage.name, error)
                await asyncio.sleep(1)
            finally:
                self._reading = False

    async def _hold(self, deliveries: list[Delivery]) -> None:
        """Take ownership in the inbox; screened-out entries go straight to commit."""
        await self.inbox.hold(deliveries)
        runnable = []
        for d in deliveries:
            screened = self.handling.screen(d)
            if screened is None:
                runnable.append(d)
            else:
                self._commits.put_nowait(screened)
        await self.inbox.enqueue(runnable)
        self.metrics.in_flight.labels(*self.labels).set(self.inbox.held)

    # -- work ---------------------------------------------------------------

    async def _work(self) -> None:
        limit = self.stage.batch_size if self.stage.batched else 1
        while batch := await self.inbox.take(limit):
            try:
                if self.stage.batched:
                    transitions = await self.handling.batch(batch)
                else:
                    transitions = [await self.handling.one(batch[0])]
            except asyncio.CancelledError:  # grace period over: nothing written, hand back
                for d in batch:
                    self._commits.put_nowait(self.outcomes.hand_back(d))
                raise
            for t in transitions:
                self._commits.put_nowait(t)

    # -- commit -------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            batch = [await self._commits.get()]
            while not self._commits.empty() and len(batch) < COMMIT_BATCH:
                batch.append(self._commits.get_nowait())
            results = await self._commit_until_done(batch)
            fenced = [t for t, ok in zip(batch, results, strict=True) if not ok]
            if fenced:
                self.metrics.fenced.labels(*self.labels).inc(len(fenced))
                log.info("stage %s: %d outcome(s) dropped, entries now owned by another consumer",
                         self.stage.name, len(fenced))
            await self.inbox.release(t.entry_id for t in batch)
            self.metrics.in_flight.labels(*self.labels).set(self.inbox.held)
            for _ in batch:
                self._commits.task_done()

    async def _commit_until_done(self, batch: list[Transition]) -> list[bool]:
        """Commit, retrying through Redis outages: entries stay held (and fenced) meanwhile."""
        delay = 0.1
        while True:
            try:
                return await self.committer.commit(batch)
            except Exception as error:  # noqa: BLE001 - keep the outcome and retry, whatever failed
                log.warning("stage %s: commit of %d failed (%s); retrying in %.1fs",
                            self.stage.name, len(batch), error, delay)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    # -- upkeep -------------------------------------------------------------

    def _upkeep_jobs(self) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
        s = self.settings
        return [
            (s.heartbeat_ttl / 3, self._heartbeat),
            (s.heartbeat_ttl / 3, self._renew_leases),
            (s.claim_interval, self._reclaim),
            (min(1.0, s.claim_interval), self._promote),
            (s.trim_interval, self._trim),
        ]

    async def _every(self, interval: float, job: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception as error:  # noqa: BLE001 - upkeep must outlive Redis hiccups
                log.warning("stage %s: %s failed: %s", self.stage.name, job.__name__, error)

    async def _promote(self) -> None:
        await promote_due(self.redis, self.keys, self.stage.source)

    async def _trim(self) -> None:
        await trim_acknowledged(self.redis, self.keys.stream(self.stage.source))

    async def _heartbeat(self) -> None:
        key = self.keys.heartbeat(self.stage.group, self.settings.consumer)
        await self.redis.set(key, int(time.time() * 1000), px=int(self.settings.heartbeat_ttl * 1000))

    async def _renew_leases(self) -> None:
        """Keep entries we still work on from being claimed as stale by live peers."""
        old = self.inbox.held_since(time.monotonic() - self.stage.deadline / 2)
        self.inbox.touch(await self.group.renew(old))

    async def _reclaim(self) -> None:
        for consumer in await self.group.consumers():
            if consumer != self.settings.consumer and self.inbox.free():
                claimed = await self.group.claim_dead(consumer, self.inbox.free())
                await self._claimed(claimed, "dead_consumer")
        if self.inbox.free():
            stale = await self.group.claim_stale(int(self.stage.deadline * 1000), self.inbox.free())
            await self._claimed(stale, "deadline")

    async def _claimed(self, deliveries: list[Delivery], reason: str) -> None:
        if deliveries:
            self.metrics.claimed.labels(*self.labels, reason).inc(len(deliveries))
            log.info("stage %s: claimed %d entries (%s)", self.stage.name, len(deliveries), reason)
            await self._hold(deliveries)

    # -- stop ---------------------------------------------------------------

    async def _shutdown(self, reader: asyncio.Task[None], workers: list[asyncio.Task[None]]) -> None:
        deadline = time.monotonic() + self.settings.shutdown_grace
        if not self._reading:
            reader.cancel()  # waiting for room: nothing is in flight from Redis
        await asyncio.wait([reader])
        unstarted = await self.inbox.close()
        for d in unstarted:
            self._commits.put_nowait(self.outcomes.hand_back(d))
        self.metrics.handed_back.labels(*self.labels).inc(len(unstarted))
        _, late = await asyncio.wait(workers, timeout=max(0.0, deadline - time.monotonic()))
        for task in late:
            task.cancel()
        if late:
            log.warning("stage %s: %d handler(s) still running after the grace period; "
                        "their entries are handed back", self.stage.name, len(late))
            await asyncio.wait(late)
