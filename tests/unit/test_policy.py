"""The retry decision as a table, and the backoff bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import InvalidPayload, ProcessingTimeout
from streams.policy import Action, RetryPolicy, decide

POLICY = RetryPolicy(base=1.0, factor=2.0, cap=10.0)


@pytest.mark.parametrize(
    ("error", "attempt", "action"),
    [
        (None, 1, Action.ACK),
        (InvalidPayload("missing field"), 1, Action.ERROR),
        (ProcessingTimeout(5), 1, Action.RETRY),
        (RuntimeError("bug"), 4, Action.RETRY),
        (RuntimeError("bug"), 5, Action.DEAD_LETTER),
        (ConnectionError("down"), 9, Action.DEAD_LETTER),
    ],
)
def test_decide_table(error: BaseException | None, attempt: int, action: Action) -> None:
    assert decide(error, attempt, 5, POLICY).action is action


def test_dead_letter_reason_names_attempts_and_error() -> None:
    decision = decide(RuntimeError("boom"), 5, 5, POLICY)
    assert decision.reason == "gave up after 5 attempts: RuntimeError: boom"


def test_ceiling_grows_exponentially_up_to_the_cap() -> None:
    assert [POLICY.ceiling(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


@given(attempt=st.integers(1, 60), seed=st.integers(0, 2**32))
def test_backoff_is_within_zero_and_the_ceiling(attempt: int, seed: int) -> None:
    delay = POLICY.backoff(attempt, random.Random(seed))
    assert 0.0 <= delay <= POLICY.ceiling(attempt)


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="factor >= 1"):
        RetryPolicy(factor=0.5)
