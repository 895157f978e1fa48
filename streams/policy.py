"""Retry policy and the pure decision of what happens after one attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from streams.errors import PermanentError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: delay uniform in [0, min(cap, base * factor**(n-1))]."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.factor < 1:
            raise ValueError("RetryPolicy needs base >= 0, cap >= 0 and factor >= 1")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay after failed attempt ``attempt`` (1-based)."""
        return min(self.cap, self.base * self.factor ** max(0, attempt - 1))

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0.0, self.ceiling(attempt))


class Action(Enum):
    ACK = "ack"
    RETRY = "retry"
    ERROR = "error"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay: float = 0.0
    reason: str = ""

    @classmethod
    def ack(cls) -> Decision:
        return cls(Action.ACK)

    @classmethod
    def retry(cls, delay: float, reason: str) -> Decision:
        return cls(Action.RETRY, delay=delay, reason=reason)

    @classmethod
    def error(cls, reason: str) -> Decision:
        return cls(Action.ERROR, reason=reason)

    @classmethod
    def dead_letter(cls, reason: str) -> Decision:
        return cls(Action.DEAD_LETTER, reason=reason)


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def decide(
    error: BaseException | None, attempt: int, max_attempts: int, policy: RetryPolicy,
    rng: random.Random | None = None,
) -> Decision:
    """Turn one handling outcome into ACK, RETRY (with delay), ERROR or DEAD_LETTER.

    A permanent error is the task's final answer (an error record); a transient
    one is retried until ``max_attempts`` attempts have been made, then the
    entry is dead-lettered so an operator can replay it after a fix.
    """
    if error is None:
        return Decision.ack()
    if isinstance(error, PermanentError):
        return Decision.error(describe(error))
    if attempt >= max_attempts:
        return Decision.dead_letter(f"gave up after {attempt} attempts: {describe(error)}")
    return Decision.retry(policy.backoff(attempt, rng), describe(error))
