"""Handling: run the processor on deliveries and turn each outcome into a Transition.

This is where an exception becomes a Decision (the only broad catch besides
middleware). Entries that cannot be decoded become error records without
reaching the processor; entries delivered more than ``crash_limit`` times
(their consumers kept dying) are quarantined in the dead-letter stream.

A stage with a ``rate`` waits for its slots (one per message) before each
attempt, outside the attempt's timeout; an outage of the limit's store is
waited out (an entry never starts unadmitted, nor fails for an outage).

Last resort: ``screen``, ``one`` and ``batch`` never raise (but for
cancellation). Whatever raises between holding a delivery and queueing its
transition, deciding or building an outcome included, ends that entry with an
error record (Outcomes.last_resort), so no input can stop a runner or leave
its entry pending to stop the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from streams.delivery import Delivery
from streams.engine.outcomes import Outcomes
from streams.engine.watchdog import Slot, Watchdog
from streams.errors import PayloadTooLarge, ProcessingTimeout, TransportError
from streams.message import BatchHandler, Handler, Outgoing
from streams.metrics import StageMetrics
from streams.policy import Action, decide, describe
from streams.rates import Limiter
from streams.stage import Stage
from streams.transition import Transition

log = logging.getLogger("millstream.runner")
ADMIT_RETRY = 1.0  # seconds between two asks for a slot while the limit's store is unreachable
Result = Sequence[Outgoing] | BaseException
T = TypeVar("T")
A = TypeVar("A")


class Handling:
    """Runs attempts and decides their transitions.

    Only attempts are counted here (their duration, and those that failed);
    outcomes are counted by the runner once committed.
    """

    def __init__(self, stage: Stage, handler: Handler | BatchHandler, outcomes: Outcomes,
                 metrics: StageMetrics, limiter: Limiter | None = None) -> None:
        """``limiter``: ``stage.rate``'s shared limit (Transport.limiter), required with a rate."""
        if stage.rate and limiter is None:
            raise ValueError(f"stage {stage.name!r}: rate {stage.rate!r} needs the transport's limiter")
        self.stage, self.outcomes = stage, outcomes
        self.metrics, self.limiter = metrics, limiter
        self.watchdog = Watchdog(stage.timeout, stage.soft_timeout)
        self._one = cast(Handler, handler)
        self._batch = cast(BatchHandler, handler)

    def screen(self, d: Delivery) -> Transition | None:
        """The transition of an entry that must not reach the processor, else None."""
        try:
            return self._screen(d)
        except Exception as error:  # noqa: BLE001 - last resort: the entry ends, the runner goes on
            return self.outcomes.last_resort(d, error)

    def _screen(self, d: Delivery) -> Transition | None:
        if d.message is None:
            return self.outcomes.error(d, f"undecodable entry {d.id}: {d.problem}")
        if d.deliveries > self.stage.crash_limit:
            reason = (f"crash loop: delivered {d.deliveries} times and every consumer holding it "
                      f"died or stalled (crash_limit {self.stage.crash_limit})")
            if too_large := self.outcomes.oversized(d):
                return self.outcomes.error(d, f"{reason}; {too_large}")
            return self.outcomes.dead_letter(d, reason, reason)
        return None

    async def one(self, d: Delivery, slot: Slot) -> Transition:
        assert d.message is not None
        # No coroutine for unrated stages: a frame per attempt shows on a no-op stage (watchdog.py).
        refused = await self._admit(1) if self.limiter is not None else None
        return self._guarded(d, refused or await self._attempt(slot, self._one, d.message))

    async def batch(self, ds: Sequence[Delivery], slot: Slot) -> list[Transition]:
        messages = [d.message for d in ds if d.message is not None]
        result: Sequence[Result] | BaseException | None = None
        if self.limiter is not None:
            result = await self._admit(len(messages))
        if result is None:
            result = await self._attempt(slot, self._batch, messages)
        try:
            if not isinstance(result, BaseException) and len(result) != len(ds):
                result = RuntimeError(
                    f"batch processor returned {len(result)} results for {len(ds)} messages")
            if isinstance(result, BaseException):
                return [self._guarded(d, result) for d in ds]
            return [self._guarded(d, r) for d, r in zip(ds, result, strict=True)]
        except Exception as error:  # noqa: BLE001 - last resort: a result that is not a sequence
            return [self.outcomes.last_resort(d, error) for d in ds]

    def _guarded(self, d: Delivery, result: Result | None) -> Transition:
        try:
            return self.conclude(d, result)
        except Exception as error:  # noqa: BLE001 - last resort: the entry ends, the runner goes on
            return self.outcomes.last_resort(d, error)

    async def _admit(self, slots: int) -> Exception | None:
        """Wait for ``slots`` slots of the stage's rate; None once admitted, else the limiter's bug."""
        assert self.limiter is not None
        waited = 0.0
        try:
            for _ in range(slots):
                waited += await self._slot(self.limiter)
        except Exception as error:  # noqa: BLE001 - not an outage: the attempt fails with it, decided
            return error
        if waited > 0:
            self.metrics.throttled.inc()
            self.metrics.throttled_seconds.inc(waited)
        return None

    async def _slot(self, limiter: Limiter) -> float:
        while True:
            try:
                return await limiter.acquire()
            except TransportError as error:
                log.warning("stage %s: rate limit unreachable (%s); asking again in %gs",
                            self.stage.name, error, ADMIT_RETRY)
                await asyncio.sleep(ADMIT_RETRY)

    async def _attempt(self, slot: Slot, handler: Callable[[A], Awaitable[T]], arg: A) -> T | BaseException:
        """The handler's result, or the exception it raised (a timeout: ProcessingTimeout)."""
        started = time.perf_counter()
        seq = slot.arm(self.stage.timeout)
        try:
            return await slot.guard(handler(arg))
        except asyncio.CancelledError:
            if slot.fired_for(seq):
                return ProcessingTimeout(self.stage.timeout)
            raise
        except Exception as error:  # noqa: BLE001 - the processor's failure becomes a Decision
            return error
        finally:
            slot.disarm()
            self.metrics.duration.observe(time.perf_counter() - started)

    def conclude(self, d: Delivery, result: Result | None) -> Transition:
        """Decide and build the transition for one delivery's result (None: no outputs)."""
        assert d.message is not None
        if isinstance(result, BaseException):
            return self._failure(d, result)
        try:
            return self.outcomes.forward(d, result or ())
        except (PayloadTooLarge, TypeError, ValueError) as bad_output:  # a retry would produce it again
            return self.outcomes.error(d, f"output rejected: {describe(bad_output)}")

    def _failure(self, d: Delivery, error: BaseException) -> Transition:
        assert d.message is not None
        self.metrics.failed.inc()
        decision = decide(error, d.message.attempt, self.stage.max_attempts, self.stage.retry)
        if decision.action is not Action.ERROR and (too_large := self.outcomes.oversized(d)):
            return self.outcomes.error(d, f"{describe(error)}; {too_large}")
        if decision.action is Action.RETRY:
            return self.outcomes.retry(d, decision.delay, decision.reason)
        if decision.action is Action.DEAD_LETTER:
            return self.outcomes.dead_letter(d, decision.reason, describe(error))
        return self.outcomes.error(d, decision.reason)
