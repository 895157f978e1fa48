"""The circuit breaker's states, driven by a hand-moved clock."""

from __future__ import annotations

import pytest

from processors.inference.circuit_breaker import BreakerPolicy, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(BreakerPolicy(failure_threshold=3, reset_after=10.0), clock=clock)


def test_it_opens_after_the_threshold_of_consecutive_failures(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()

    assert breaker.state == "open"
    assert not breaker.allow()


def test_a_success_resets_the_count_of_failures(breaker: CircuitBreaker) -> None:
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()

    assert breaker.state == "closed"


def test_after_the_reset_time_one_probe_goes_out_and_its_success_closes_it(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        breaker.failure()
    clock.now += 10.0

    assert breaker.allow()  # the probe
    assert breaker.state == "half_open"
    assert not breaker.allow()  # only one probe at a time
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_a_failed_probe_opens_it_again_for_a_full_reset_time(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.failure()
    clock.now += 10.0
    assert breaker.allow()

    breaker.failure()
    clock.now += 9.0

    assert breaker.state == "open" and not breaker.allow()


def test_an_abandoned_probe_frees_the_slot_for_the_next_call(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.failure()
    clock.now += 10.0
    assert breaker.allow()

    breaker.abandon()

    assert breaker.allow()


def test_a_nonsensical_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(failure_threshold=0)
