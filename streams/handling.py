"""Handling: run the processor on deliveries and turn each outcome into a Transition.

This is where an exception becomes a Decision (the only broad catch besides
middleware). Entries that cannot be decoded become error records without
reaching the processor; entries delivered more than ``crash_limit`` times
(their consumers kept dying) are quarantined in the dead-letter stream.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import TypeVar, cast

from streams.delivery import Delivery
from streams.errors import PayloadTooLarge, ProcessingTimeout
from streams.message import BatchHandler, Handler, Message, Outgoing
from streams.metrics import StageMetrics
from streams.outcomes import Outcomes
from streams.policy import Action, decide, describe
from streams.redis.transitions import Transition
from streams.stage import Stage
from streams.watchdog import Watchdog

Result = Sequence[Outgoing] | BaseException
T = TypeVar("T")


class Handling:
    def __init__(self, stage: Stage, handler: Handler | BatchHandler, outcomes: Outcomes,
                 metrics: StageMetrics) -> None:
        self.stage, self.handler, self.outcomes = stage, handler, outcomes
        self.metrics = metrics
        self.watchdog = Watchdog(stage.timeout)

    def screen(self, d: Delivery) -> Transition | None:
        """The transition of an entry that must not reach the processor, else None."""
        if d.message is None:
            self.metrics.errors.inc()
            return self.outcomes.error(d, f"undecodable entry {d.id}: {d.problem}")
        if d.deliveries > self.stage.crash_limit:
            reason = (f"crash loop: delivered {d.deliveries} times and every consumer holding it "
                      f"died or stalled (crash_limit {self.stage.crash_limit})")
            self.metrics.dead_lettered.inc()
            return self.outcomes.dead_letter(d, reason, reason)
        return None

    async def one(self, d: Delivery) -> Transition:
        assert d.message is not None
        result = await self._timed(self._call_one(d.message))
        return self.conclude(d, result)

    async def batch(self, ds: Sequence[Delivery]) -> list[Transition]:
        messages = [d.message for d in ds if d.message is not None]
        result = await self._timed(self._call_batch(messages))
        if isinstance(result, BaseException):
            return [self.conclude(d, result) for d in ds]
        if len(result) != len(ds):
            error = RuntimeError(f"batch processor returned {len(result)} results for {len(ds)} messages")
            return [self.conclude(d, error) for d in ds]
        return [self.conclude(d, r) for d, r in zip(ds, result, strict=True)]

    async def _call_one(self, message: Message) -> Sequence[Outgoing]:
        return await cast(Handler, self.handler)(message) or ()

    async def _call_batch(self, messages: list[Message]) -> Sequence[Result]:
        return await cast(BatchHandler, self.handler)(messages)

    async def _timed(self, call: Awaitable[T]) -> T | BaseException:
        started = time.perf_counter()
        try:
            return await self.watchdog.call(call)
        except TimeoutError:
            return ProcessingTimeout(self.stage.timeout)
        except Exception as error:  # noqa: BLE001 - the processor's failure becomes a Decision
            return error
        finally:
            self.metrics.duration.observe(time.perf_counter() - started)

    def conclude(self, d: Delivery, result: Result) -> Transition:
        """Decide and build the transition for one delivery's result."""
        assert d.message is not None
        if isinstance(result, BaseException):
            return self._failure(d, result)
        try:
            transition = self.outcomes.forward(d, result)
        except (PayloadTooLarge, TypeError) as bad_output:  # a retry would produce it again
            self.metrics.errors.inc()
            return self.outcomes.error(d, f"output rejected: {describe(bad_output)}")
        self.metrics.processed.inc()
        return transition

    def _failure(self, d: Delivery, error: BaseException) -> Transition:
        assert d.message is not None
        self.metrics.failed.inc()
        decision = decide(error, d.message.attempt, self.stage.max_deliveries, self.stage.retry)
        if decision.action is Action.RETRY:
            self.metrics.retried.inc()
            return self.outcomes.retry(d, decision.delay, decision.reason)
        if decision.action is Action.DEAD_LETTER:
            self.metrics.dead_lettered.inc()
            return self.outcomes.dead_letter(d, decision.reason, describe(error))
        self.metrics.errors.inc()
        return self.outcomes.error(d, decision.reason)
