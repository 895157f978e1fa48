"""Handling: run the processor on deliveries and turn each outcome into a Transition.

This is where an exception becomes a Decision (the only broad catch besides
middleware). Entries that cannot be decoded become error records without
reaching the processor; entries delivered more than ``crash_limit`` times
(their consumers kept dying) are quarantined in the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from streams.delivery import Delivery
from streams.errors import PayloadTooLarge, ProcessingTimeout
from streams.message import BatchHandler, Handler, Outgoing
from streams.metrics import StageMetrics
from streams.outcomes import Outcomes
from streams.policy import Action, decide, describe
from streams.redis.transitions import Transition
from streams.stage import Stage
from streams.watchdog import Slot, Watchdog

Result = Sequence[Outgoing] | BaseException
T = TypeVar("T")
A = TypeVar("A")


class Handling:
    """Runs attempts and decides their transitions.

    Only attempts are counted here (their duration, and those that failed);
    outcomes are counted by the runner once committed.
    """

    def __init__(self, stage: Stage, handler: Handler | BatchHandler, outcomes: Outcomes,
                 metrics: StageMetrics) -> None:
        self.stage, self.outcomes = stage, outcomes
        self.metrics = metrics
        self.watchdog = Watchdog(stage.timeout)
        self._one = cast(Handler, handler)
        self._batch = cast(BatchHandler, handler)

    def screen(self, d: Delivery) -> Transition | None:
        """The transition of an entry that must not reach the processor, else None."""
        if d.message is None:
            return self.outcomes.error(d, f"undecodable entry {d.id}: {d.problem}")
        if d.deliveries > self.stage.crash_limit:
            reason = (f"crash loop: delivered {d.deliveries} times and every consumer holding it "
                      f"died or stalled (crash_limit {self.stage.crash_limit})")
            return self.outcomes.dead_letter(d, reason, reason)
        return None

    async def one(self, d: Delivery, slot: Slot) -> Transition:
        assert d.message is not None
        return self.conclude(d, await self._attempt(slot, self._one, d.message))

    async def batch(self, ds: Sequence[Delivery], slot: Slot) -> list[Transition]:
        messages = [d.message for d in ds if d.message is not None]
        result = await self._attempt(slot, self._batch, messages)
        if isinstance(result, BaseException):
            return [self.conclude(d, result) for d in ds]
        if len(result) != len(ds):
            error = RuntimeError(f"batch processor returned {len(result)} results for {len(ds)} messages")
            return [self.conclude(d, error) for d in ds]
        return [self.conclude(d, r) for d, r in zip(ds, result, strict=True)]

    async def _attempt(self, slot: Slot, handler: Callable[[A], Awaitable[T]], arg: A) -> T | BaseException:
        """The handler's result, or the exception it raised (a timeout: ProcessingTimeout)."""
        started = time.perf_counter()
        seq = slot.arm(self.stage.timeout)
        try:
            return await handler(arg)
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
        except (PayloadTooLarge, TypeError) as bad_output:  # a retry would produce it again
            return self.outcomes.error(d, f"output rejected: {describe(bad_output)}")

    def _failure(self, d: Delivery, error: BaseException) -> Transition:
        assert d.message is not None
        self.metrics.failed.inc()
        decision = decide(error, d.message.attempt, self.stage.max_deliveries, self.stage.retry)
        if decision.action is Action.RETRY:
            return self.outcomes.retry(d, decision.delay, decision.reason)
        if decision.action is Action.DEAD_LETTER:
            return self.outcomes.dead_letter(d, decision.reason, describe(error))
        return self.outcomes.error(d, decision.reason)
