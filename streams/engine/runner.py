"""StageRunner: read → handle → commit, plus the upkeep that keeps delivery honest.

One runner serves one stage in one process, as consumer ``settings.consumer``,
through the part of a transport that ``Transport.for_stage`` gives it
(streams.transport: Redis in production, streams.testing in tests):

* read: own pending entries first (an earlier run's), then new ones, never
  holding more than ``max_in_flight`` (the Inbox);
* work: ``concurrency`` loops take deliveries and handle them (handling.py);
* commit: one loop applies finished transitions in batches, each atomically;
  an entry is acknowledged only in the call that writes its outcome, and only
  while it is still ours (fencing; entries carry the fence token they were
  read under, so a commit checks only those that may have been taken);
* upkeep: heartbeat and lease renewal, claiming entries of dead or stalled
  consumers, moving due retries back, trimming acknowledged entries;
* pause: once per claim interval, before claiming, the runner asks whether an
  operator paused the stage; while paused it reads and claims nothing, handles
  and commits what it holds, and keeps its heartbeat and leases;
* cancel: once per claim interval the runner asks whether any cancel counts;
  while one does, each read batch's request ids are looked up at once (one call
  per batch), and so are those of the entries it holds: a cancelled task is
  skipped, or its running handler cancelled, and ends as State.CANCELLED
  (docs/controls/cancel.md). Followers (stages reading the errors stream or a
  result stream) act after a task's end and never cancel;
* stop: stop reading, hand back unstarted entries at once, let handlers finish
  within the grace period (hand back the rest), commit, drop the heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence

from streams.delivery import Delivery
from streams.engine.cancels import Cancels
from streams.engine.gate import PriorityGate
from streams.engine.handling import Handling
from streams.engine.inbox import Inbox
from streams.engine.keyed_inbox import KeyedInbox
from streams.engine.lease import LaneLease
from streams.engine.outbox import Outbox
from streams.engine.outcomes import Outcomes
from streams.engine.watchdog import Slot
from streams.errors import InvalidPayload
from streams.message import Middleware
from streams.metrics import Metrics
from streams.pipeline import ID_FIELDS, chain, refuse_batched_middleware
from streams.priority import Priority
from streams.routing import key_text
from streams.settings import Settings
from streams.stage import Stage
from streams.timing import pause
from streams.transition import Delay, State, Transition, Verdict
from streams.transport import Transport

log = logging.getLogger("millstream.runner")
READ_BLOCK_MS = 500
COMMIT_BATCH = 500
COMMITS_IN_FLIGHT = 3
MAX_REPORTED = 1000  # held entries a heartbeat reports (GET /v1/running), oldest first
# Back-offs through an outage, in seconds: after a failed read; after a failed commit, doubling.
READ_RETRY = 1.0
# An owned lane is read without blocking (the lease is checked in the same call): idle polls
# back off from the first to the second, in seconds.
OWNED_POLL_MIN, OWNED_POLL_MAX = 0.005, 0.2
TAKEOVER_PAGE = 500  # entries claimed per call when a lane changes hands (all of them are, before reading)
COMMIT_RETRY_FIRST, COMMIT_RETRY_MAX = 0.1, 5.0
ERRORS = "errors"  # the logical name of the errors stream (streams.redis.keys.ERRORS)


class StageRunner:
    def __init__(self, transport: Transport, stage: Stage, settings: Settings, metrics: Metrics,
                 middleware: Sequence[Middleware] = (), secrets: Sequence[str] = (), *,
                 id_fields: Sequence[str] = ID_FIELDS, results: Sequence[str] = (),
                 prioritized: Collection[str] = (), gate: PriorityGate | None = None,
                 lane: tuple[int, int] = (0, 1)) -> None:
        """``secrets``: known secret values, masked in error records and dead letters (text.redact);
        ``id_fields``: the pipeline's id fields, reported in error records (Pipeline.id_fields);
        ``results``: its result streams, whose payloads the status record keeps (Pipeline.results);
        ``prioritized``: the streams read by priority (Pipeline.prioritized), whose forwards go to
        a lane; ``gate``: the slots a lane of a stage with priorities shares with the other lanes
        (``stage_runners`` makes both); ``lane``: an owned lane's (index, count) among its stage's
        owned lanes (streams.engine.lease)."""
        refuse_batched_middleware(stage, middleware)
        if (stage.priorities and (stage.level is None or gate is None)) or (stage.key and not stage.role):
            raise ValueError(f"stage {stage.name!r} runs as lanes (priorities or a key): use stage_runners")
        self.stage, self.settings = stage, settings
        self.transport = transport.for_stage(stage, settings.consumer)
        self.metrics = metrics.for_stage(transport.pipeline, stage.name)
        capacity, ttl = stage.max_in_flight, settings.heartbeat_ttl
        self.inbox = KeyedInbox(capacity, _key_of(stage.key)) if stage.key else Inbox(capacity)
        self.lease = LaneLease(self.transport, settings.consumer, *lane, ttl) if stage.owned else None
        source = self.transport.address(stage.source)
        self.outcomes = Outcomes(stage, settings.consumer, source, settings.max_payload_bytes, secrets,
                                 id_fields, results, prioritized)
        self._gate, self._level = gate, stage.level or Priority.NORMAL
        self._held_shown = 0  # in_flight as last added to the gauge, which a stage's lanes share
        handler = stage.processor if stage.batched else chain(stage.processor, middleware)  # type: ignore[arg-type]
        limiter = transport.limiter(stage) if stage.rate else None
        self.handling = Handling(stage, handler, self.outcomes, self.metrics, limiter)
        self._outbox = Outbox()
        self._stop = asyncio.Event()
        self._halt = asyncio.Event()  # ends the upkeep loops once everything is committed
        self._reading = False
        self._token = ""  # this consumer's fence token, as last seen in the transport
        # Claims and scans that hand this consumer entries take turns, so a scan
        # for lost entries never mistakes entries being claimed for lost ones.
        self._claims = asyncio.Lock()
        self._unsure = False  # a read or claim failed: its entries may be ours in the transport, unknown here
        self._reported_pause = False  # as the gauge and the log say it: set once the reader honours it
        # A follower's input (an error record, a result) comes after its task ended: never cancelled.
        self.cancels = Cancels(self.transport, stage.name, self.inbox, self._outbox, self.outcomes,
                               cancellable=stage.source not in {ERRORS, *results})
        self.started = asyncio.Event()

    @property
    def paused(self) -> bool:
        """Whether the reader is parked by a pause: no read or claim starts until the stage is resumed."""
        return self._reported_pause

    def stop(self) -> None:
        """Ask the runner to shut down gracefully; ``run`` returns when it has."""
        self._stop.set()

    async def run(self) -> None:
        await self.transport.join()
        self._token = await self.transport.token()
        self.metrics.deadline.set(self.stage.deadline)
        await self._heartbeat()
        await self._follow_pause()  # a worker started while its stage is paused reads nothing new
        await self.cancels.follow()  # cancels issued while every worker was down count from the first read
        if self.lease is not None:
            await self._own()
        async with asyncio.TaskGroup() as tg:
            upkeep = [tg.create_task(self._every(i, f)) for i, f in self._upkeep_jobs()]
            committer = tg.create_task(self._commit_loop())
            watchdog = tg.create_task(self.handling.watchdog.run())
            workers = [tg.create_task(self._work()) for _ in range(self.stage.concurrency)]
            reader = tg.create_task(self._read() if self.lease is None else self._read_owned())
            self.started.set()
            await self._stop.wait()
            await self._shutdown(reader, workers)
            await self._outbox.drained()
            # Not cancel(): a cancellation can be lost inside a transport call and leave a loop running.
            self._halt.set()
            _, stuck = await asyncio.wait(upkeep, timeout=10)
            for task in [*stuck, committer, watchdog]:  # these two only wait on in-process events
                task.cancel()
        if self.lease is not None and self.lease.held:
            try:
                await self.lease.release()  # what it still holds is pending: the next holder claims it
            except self.transport.transient as error:
                log.warning("stage %s: releasing %s failed (%s); it expires with its TTL",
                            self.stage.name, self.stage.source, error)
        await self.transport.leave()

    # -- read ---------------------------------------------------------------

    async def _read(self) -> None:
        # The token is taken before each read: a claim after it changes the token in Redis.
        self._reading = True
        async with self._claims:
            token = self._token
            async for page in self.transport.own_pending(self.stage.max_in_flight):
                await self._hold(page, token)
                token = self._token
        self._reading = False
        while not self._stop.is_set():
            self._report_pause(self.inbox.paused)
            room = await self.inbox.room()
            self._reading = True
            try:
                if self._unsure:
                    await self._recover_lost()
                token = self._token
                batch = await self.transport.read_new(min(room, self.stage.batch_size), READ_BLOCK_MS)
                await self._hold(batch, token)
            except self.transport.transient as error:  # an outage: a server restarting, unreachable
                self._unsure = True
                log.warning("stage %s: read failed (%s); retrying in %gs", self.stage.name, error, READ_RETRY)
                await asyncio.sleep(READ_RETRY)
            finally:
                self._reading = False

    async def _read_owned(self) -> None:
        """Read an owned lane while its lease is held: what its last holder left first, then new entries."""
        assert self.lease is not None
        idle = OWNED_POLL_MIN
        while not self._stop.is_set():
            if not self.lease.held or self.lease.draining:
                waiting = asyncio.ensure_future(self.lease.wait_held())
                stopping = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait([waiting, stopping], return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                stopping.cancel()
                continue
            self._report_pause(self.inbox.paused)
            room = await self.inbox.room()
            self._reading = True
            try:
                if self._unsure:
                    await self._recover_lost()
                token = self._token
                batch = await self.transport.read_owned(min(room, self.stage.batch_size))
                if batch is None:
                    await self._lost_lease()
                elif batch:
                    await self._hold(batch, token)
                    idle = OWNED_POLL_MIN
                else:
                    await pause(self._stop, idle)
                    idle = min(OWNED_POLL_MAX, idle * 2)
            except self.transport.transient as error:
                self._unsure = True
                log.warning("stage %s: read failed (%s); retrying in %gs", self.stage.name, error, READ_RETRY)
                await asyncio.sleep(READ_RETRY)
            finally:
                self._reading = False

    async def _take_over(self) -> None:
        """Take the lane's lease if this consumer is preferred for it, and what its last holder left.

        Everything pending in the lane's group is claimed, oldest first, before the first
        read: a key's earlier entries are held before its later ones.
        """
        assert self.lease is not None
        if not await self.lease.preferred() or not await self.lease.take():
            return
        async with self._claims:
            start, claimed = "-", 0
            while True:
                token = self._token
                page = await self.transport.claim_owned(start, TAKEOVER_PAGE)
                if page is None:  # lost again at once (a TTL too short for the call): try later
                    return
                if not page:
                    break
                await self._hold(page, token)
                claimed += len(page)
                start = page[-1].id
        self.lease.set(True)
        log.info("stage %s: reading %s (%d entries left by its last reader taken over)",
                 self.stage.name, self.stage.source, claimed)
        if claimed:
            self.metrics.claimed_dead.inc(claimed)

    async def _lost_lease(self) -> None:
        """Another consumer holds the lane now (this one stalled past its TTL): drop what is queued."""
        assert self.lease is not None
        self.lease.set(False)
        dropped = await self.inbox.forget_queued()
        self._show_held()
        log.warning("stage %s: lost %s to another consumer (stalled past the heartbeat TTL?); "
                    "%d queued entries dropped, outcomes of those in flight will be fenced off",
                    self.stage.name, self.stage.source, dropped)

    async def _own(self) -> None:
        """Upkeep of an owned lane: take it when preferred, hand it on (after draining) when not."""
        assert self.lease is not None
        if await self._follow_pause():
            return
        if not self.lease.held:
            await self._take_over()
        elif not await self.lease.preferred():
            if not self.lease.draining:
                self.lease.set(True, draining=True)
                log.info("stage %s: handing %s on to another consumer once its %d entries are done",
                         self.stage.name, self.stage.source, self.inbox.held)
            if self.inbox.held == 0 and not self._reading:
                await self.lease.release()
        elif self.lease.draining:
            self.lease.set(True)  # preferred again before it was handed on

    async def _recover_lost(self) -> None:
        """Hold the entries a failed read or claim gave this consumer in the transport without its knowing.

        Nobody else would take them before their deadline: this consumer is alive.
        """
        async with self._claims:
            token = self._token
            lost = await self.transport.claim_lost(self.inbox)
            self._unsure = False
        if lost:
            log.warning("stage %s: %d entries whose delivery was lost with a connection are "
                        "taken up again", self.stage.name, len(lost))
            await self._hold(lost, token)

    async def _hold(self, deliveries: list[Delivery], token: str) -> None:
        """Take ownership in the inbox; cancelled and screened-out entries go straight to commit."""
        await self.inbox.hold(deliveries, token)
        if self._level is not Priority.NORMAL:
            for d in deliveries:
                if d.message is not None:
                    d.message.priority = self._level
        cancels = await self.cancels.of(deliveries) if self.cancels.active and deliveries else None
        runnable = []
        for d in deliveries:
            if cancels and (cancel := cancels.get(d.request_id)) is not None:
                self._outbox.put(self.cancels.transition(d, cancel))
                continue
            screened = self.handling.screen(d)
            if screened is None:
                runnable.append(d)
            else:
                self._outbox.put(screened)
        await self.inbox.enqueue(runnable)
        self._show_held()

    # -- work ---------------------------------------------------------------

    async def _work(self) -> None:
        async with self.handling.watchdog.worker() as slot:
            while batch := await self.inbox.take(self._take_limit):
                await (self._handle_batch(batch, slot) if self.stage.batched
                       else self._handle_each(batch, slot))

    @property
    def _take_limit(self) -> int:
        """A lone worker takes what is queued; several take one each, to share the work."""
        return self.stage.batch_size if self.stage.batched or self.stage.concurrency == 1 else 1

    async def _handle_each(self, batch: list[Delivery], slot: Slot) -> None:
        c = self.cancels
        c.taken[slot] = batch
        try:
            for i, d in enumerate(batch):
                if self.inbox.closed:  # stopping: the rest was never started
                    self._hand_back(batch[i:])
                    return
                if c.skip and (cancel := c.skip.pop(d.id, None)) is not None:
                    self._outbox.put(c.transition(d, cancel))
                    continue
                if self._gate is not None:
                    try:
                        await self._gate.acquire(self._level)
                    except asyncio.CancelledError:  # the grace period over while waiting: never started
                        self._hand_back(batch[i:])
                        raise
                c.running[slot] = d
                try:
                    t = await self.handling.one(d, slot)
                    if self.stage.key and t.state is State.RETRYING:
                        t = await self._retry_in_place(d, t, slot)
                except asyncio.CancelledError:  # a cancel, or the grace period over: then hand back
                    if (cancel := c.absorb(d, slot)) is None:
                        self._hand_back(batch[i:])
                        raise
                    t = c.transition(d, cancel)
                finally:
                    if self._gate is not None:
                        self._gate.release()
                if c.cancelling and (cancel := c.absorb(d, slot)) is not None:
                    t = c.transition(d, cancel)  # the handler swallowed the cancellation
                self._outbox.put(t)
        finally:
            del c.taken[slot]
            c.running.pop(slot, None)

    async def _retry_in_place(self, d: Delivery, t: Transition, slot: Slot) -> Transition:
        """A keyed lane retries an entry where it is, holding its key (and its handler slot):
        sent back to its stream, the retry would come after the key's later entries."""
        assert d.message is not None
        while t.state is State.RETRYING:
            due_ms = max((op.due_ms for op in t.ops if isinstance(op, Delay)), default=0)
            await asyncio.sleep(max(0.0, due_ms / 1000 - time.time()))
            d.message.attempt += 1
            t = await self.handling.one(d, slot)
        return t

    async def _handle_batch(self, batch: list[Delivery], slot: Slot) -> None:
        try:
            if self._gate is not None:
                await self._gate.acquire(self._level)
            try:
                transitions = await self.handling.batch(batch, slot)
            finally:
                if self._gate is not None:
                    self._gate.release()
        except asyncio.CancelledError:
            self._hand_back(batch)
            raise
        for t in transitions:
            self._outbox.put(t)

    def _show_held(self) -> None:
        held = self.inbox.held
        self.metrics.in_flight.inc(held - self._held_shown)
        self._held_shown = held

    def _hand_back(self, deliveries: list[Delivery]) -> None:
        if self.lease is not None:
            return  # appended again, they would follow later entries: left pending for the next holder
        for d in deliveries:
            self._outbox.put(self.outcomes.hand_back(d))
        self.metrics.handed_back.inc(len(deliveries))

    # -- commit -------------------------------------------------------------

    async def _commit_loop(self) -> None:
        """Send each batch as it is ready, with up to COMMITS_IN_FLIGHT awaiting their replies.

        Waiting for one commit's reply before sending the next doubled the
        per-stage latency under load (docs/BENCHMARKS.md). Batches hold
        distinct entries, and fencing holds for each on its own.
        """
        # A router commits in order: its partitions must get each key's entries as published.
        slots = asyncio.Semaphore(1 if self.stage.role == "router" else COMMITS_IN_FLIGHT)
        async with asyncio.TaskGroup() as commits:
            while True:
                await slots.acquire()
                batch = await self._outbox.take(COMMIT_BATCH)
                commits.create_task(self._commit(batch, slots))

    async def _commit(self, batch: list[Transition], slots: asyncio.Semaphore) -> None:
        try:
            verdict = await self._commit_until_done(batch)
        finally:
            slots.release()
        if verdict.token != self._token:
            log.info("stage %s: entries were claimed from this consumer; the entries held "
                     "now are checked one by one at commit", self.stage.name)
            self._token = verdict.token
        if verdict.fenced:
            self.metrics.fenced.inc(len(verdict.fenced))
            log.info("stage %s: %d outcome(s) dropped, entries now owned by another consumer",
                     self.stage.name, len(verdict.fenced))
            fenced = set(verdict.fenced)
            self.metrics.committed(t.state for i, t in enumerate(batch) if i not in fenced)
        else:
            self.metrics.committed(t.state for t in batch)
        await self.inbox.release(t.entry_id for t in batch)
        self._show_held()
        self._outbox.done(len(batch))

    async def _commit_until_done(self, batch: list[Transition]) -> Verdict:
        """Commit, retrying through outages: entries stay held (and fenced) meanwhile.

        A failed call may have been applied with its reply lost, so a retry
        checks every entry: one already committed is no longer pending, and
        is skipped rather than written twice.
        """
        token = self._token
        suspect = self.inbox.suspects([t.entry_id for t in batch], token)
        delay = COMMIT_RETRY_FIRST
        while True:
            try:
                return await self.transport.commit(batch, token, suspect)
            except Exception as error:  # noqa: BLE001 - keep the outcome and retry, whatever failed
                log.warning("stage %s: commit of %d failed (%s); retrying in %.1fs",
                            self.stage.name, len(batch), error, delay)
                suspect = list(range(len(batch)))
                await asyncio.sleep(delay)
                delay = min(COMMIT_RETRY_MAX, delay * 2)

    # -- upkeep -------------------------------------------------------------

    def _upkeep_jobs(self) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
        s = self.settings
        return [
            (s.heartbeat_ttl / 3, self._heartbeat),
            (s.heartbeat_ttl / 3, self._renew_leases),
            (s.claim_interval, self._reclaim if self.lease is None else self._own),
            (s.claim_interval, self._follow_cancels),
            (min(1.0, s.claim_interval), self._promote),
            (s.trim_interval, self._trim),
        ]

    async def _every(self, interval: float, job: Callable[[], Awaitable[object]]) -> None:
        while not await pause(self._halt, interval):
            try:
                await job()
            except Exception as error:  # noqa: BLE001 - upkeep must outlive outages
                log.warning("stage %s: %s failed: %s", self.stage.name, job.__name__, error)

    async def _promote(self) -> None:
        await self.transport.promote_due()

    async def _trim(self) -> None:
        await self.transport.trim()

    async def _heartbeat(self) -> None:
        await self.transport.heartbeat(self.settings.heartbeat_ttl, self.inbox.holding(MAX_REPORTED))
        if self.lease is not None and self.lease.held and not await self.lease.renew():
            await self._lost_lease()

    async def _renew_leases(self) -> None:
        """Keep entries we still work on from being claimed as stale by live peers."""
        old = self.inbox.held_since(time.monotonic() - self.stage.deadline / 2)
        self.inbox.touch(await self.transport.renew(old))

    async def _follow_pause(self) -> bool:
        """Ask whether the stage is paused; park or wake the reader when that changed.

        A read already waiting (up to READ_BLOCK_MS) may still deliver entries:
        the pause is reported once it returned, by the reader itself.
        """
        paused = await self.transport.paused()
        if paused != self.inbox.paused:
            await self.inbox.set_paused(paused)
        if not (paused and self._reading):
            self._report_pause(paused)
        return paused

    def _report_pause(self, paused: bool) -> None:
        """Gauge and one log line when reading stops for a pause, or starts again."""
        if paused == self._reported_pause:
            return
        self._reported_pause = paused
        self.metrics.paused.set(int(paused))
        if paused:
            log.info("stage %s: paused by an operator; finishing the %d entries held, reading and "
                     "claiming nothing new", self.stage.name, self.inbox.held)
        else:
            log.info("stage %s: resumed; reading again", self.stage.name)

    async def _follow_cancels(self) -> None:
        await self.cancels.follow()

    async def _reclaim(self) -> None:
        if await self._follow_pause():
            return
        async with self._claims:
            try:
                for consumer in await self.transport.consumers():
                    if consumer != self.settings.consumer and self.inbox.free():
                        token = self._token
                        claimed = await self.transport.claim_dead(consumer, self.inbox.free())
                        await self._claimed(claimed, "dead_consumer", token)
                if self.inbox.free():
                    token = self._token
                    deadline_ms = int(self.stage.deadline * 1000)
                    stale = await self.transport.claim_stale(deadline_ms, self.inbox.free())
                    await self._claimed(stale, "deadline", token)
            except BaseException:
                self._unsure = True  # a claim whose reply was lost left its entries ours in the transport
                raise

    async def _claimed(self, deliveries: list[Delivery], reason: str, token: str) -> None:
        if deliveries:
            counter = self.metrics.claimed_dead if reason == "dead_consumer" else self.metrics.claimed_stale
            counter.inc(len(deliveries))
            log.info("stage %s: claimed %d entries (%s)", self.stage.name, len(deliveries), reason)
            await self._hold(deliveries, token)

    # -- stop ---------------------------------------------------------------

    async def _shutdown(self, reader: asyncio.Task[None], workers: list[asyncio.Task[None]]) -> None:
        deadline = time.monotonic() + self.settings.shutdown_grace
        if not self._reading:
            reader.cancel()  # waiting for room: nothing is in flight from the transport
        await asyncio.wait([reader])
        self._hand_back(await self.inbox.close())
        _, late = await asyncio.wait(workers, timeout=max(0.0, deadline - time.monotonic()))
        for task in late:
            task.cancel()
        if late:
            log.warning("stage %s: %d handler(s) still running after the grace period; "
                        "their entries are handed back", self.stage.name, len(late))
            await asyncio.wait(late)


def _key_of(field: str) -> Callable[[Delivery], str]:
    """A partition's key of an entry: its payload's ``field`` as the router read it; its id if undecodable."""
    def key_of(d: Delivery) -> str:
        if d.message is None:
            return f"entry:{d.id}"
        try:
            return key_text(d.message.payload, field)
        except InvalidPayload:
            return f"entry:{d.id}"  # written around the router: no order to keep
    return key_of


def stage_runners(transport: Transport, stage: Stage, settings: Settings, metrics: Metrics,
                  middleware: Sequence[Middleware] = (), secrets: Sequence[str] = (), *,
                  id_fields: Sequence[str] = ID_FIELDS, results: Sequence[str] = (),
                  prioritized: Collection[str] = ()) -> list[StageRunner]:
    """The runners of ``stage``: one, or one per lane. A stage by priority's lanes share one gate of
    ``concurrency`` handler slots; so do a keyed stage's partitions (its router runs alone)."""
    lanes = stage.lanes
    gate = PriorityGate(stage.concurrency, stage.priority_share) if stage.priorities or stage.key else None
    return [StageRunner(transport, lane, settings, metrics, middleware, secrets, id_fields=id_fields,
                        results=results, prioritized=prioritized,
                        gate=gate if lane.role != "router" else None, lane=(i, len(lanes)))
            for i, lane in enumerate(lanes)]
