"""Stage rates: the text Stage(rate=...) takes, the GCRA arithmetic, and how Admission waits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from streams.message import Message, Outgoing
from streams.rates import Admission, StageRate, parse_rate
from streams.stage import Stage
from streams.testing import ManualClock
from streams.testing.memory_limiter import Slot, gcra


async def _noop(message: Message) -> Sequence[Outgoing]:
    return []


@pytest.mark.parametrize(("text", "count", "period", "burst"), [
    ("100/m", 100, 60.0, 1),
    ("10/10s", 10, 10.0, 1),
    ("5/s", 5, 1.0, 1),
    ("3000/h", 3000, 3600.0, 1),
    ("2/d", 2, 86400.0, 1),
    ("100/m burst 10", 100, 60.0, 10),
    (" 1 / 2.5m ", 1, 150.0, 1),
    ("600/m  burst  3", 600, 60.0, 3),
])
def test_a_rate_is_count_per_period_with_an_optional_burst(text: str, count: int, period: float,
                                                           burst: int) -> None:
    assert parse_rate(text) == StageRate(count, period, burst)


@pytest.mark.parametrize("text", [
    "", "100", "100/", "/m", "100/x", "100/min", "1.5/m", "-1/s", "100 per minute", "100/m burst",
    "100/m burst 2.5", "100/m burst 10 extra",
])
def test_text_that_is_no_rate_is_refused_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not COUNT/PERIOD") as refused:
        parse_rate(text)
    assert repr(text) in str(refused.value)


@pytest.mark.parametrize("text", ["0/m", "100/0s", "100/m burst 0"])
def test_a_rate_of_nothing_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        parse_rate(text)


def test_a_stage_with_a_bad_rate_fails_at_construction_naming_the_stage_and_the_text() -> None:
    with pytest.raises(ValueError, match=r"^stage 'translate': rate '100 per minute' is not COUNT/PERIOD"):
        Stage("translate", "in", _noop, rate="100 per minute")
    with pytest.raises(ValueError, match=r"^stage 'translate': rate_horizon must be > 0"):
        Stage("translate", "in", _noop, rate="100/m", rate_horizon=0)


def test_a_stage_keeps_its_rate_as_written_and_parses_it() -> None:
    stage = Stage("translate", "in", _noop, rate="100/m burst 10")
    assert stage.rate == "100/m burst 10"
    assert stage.rate_limit == StageRate(100, 60.0, 10)
    assert stage.rate_limit.interval == pytest.approx(0.6)
    assert Stage("s", "in", _noop).rate_limit is None


# -- GCRA, as the Lua script computes it (microseconds) ---------------------------


def test_slots_are_spaced_by_the_interval() -> None:
    granted, wait, tat = gcra(0, 1_000, 100, 1, 10_000)
    assert (granted, wait, tat) == (True, 0, 1_100)
    assert gcra(tat, 1_000, 100, 1, 10_000) == (True, 100, 1_200)


def test_a_burst_lets_that_many_go_at_once_after_an_idle_spell() -> None:
    tat, waits = 0, []
    for _ in range(4):
        granted, wait, tat = gcra(tat, 1_000, 100, 3, 10_000)
        assert granted
        waits.append(wait)
    assert waits == [0, 0, 0, 100]


def test_a_slot_past_the_wait_limit_is_refused_and_not_taken() -> None:
    assert gcra(1_500, 1_000, 100, 1, 200) == (False, 500, 1_500)


# -- Admission: reserve within the horizon, else sleep and ask again ----------------


class Script:
    """A shared limit answering the reservations it is given, and a sleep that records."""

    def __init__(self, *answers: Slot) -> None:
        self.answers, self.asked, self.slept = list(answers), [], []

    async def reserve(self, max_wait: float | None = None) -> Slot:
        self.asked.append(max_wait)
        return self.answers.pop(0)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_a_free_slot_admits_at_once() -> None:
    script = Script(Slot(True, 0.0))
    assert await Admission(script, script.sleep, 5.0).acquire() == 0.0
    assert (script.asked, script.slept) == ([5.0], [])


async def test_a_slot_within_the_horizon_is_reserved_and_slept_for() -> None:
    script = Script(Slot(True, 0.3))
    assert await Admission(script, script.sleep, 5.0).acquire() == pytest.approx(0.3)
    assert script.slept == [0.3]


async def test_a_slot_past_the_horizon_is_waited_for_unreserved_then_asked_for_again() -> None:
    script = Script(Slot(False, 12.0), Slot(False, 6.0), Slot(True, 4.5))
    assert await Admission(script, script.sleep, 5.0).acquire() == pytest.approx(7.0 + 1.0 + 4.5)
    assert script.slept == pytest.approx([7.0, 1.0, 4.5])
    assert script.asked == [5.0, 5.0, 5.0]


def test_a_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon must be > 0"):
        Admission(Script(), Script().sleep, 0)


# -- ManualClock.sleep: what waits on the memory transport's time -------------------


async def test_a_sleep_on_the_manual_clock_ends_when_the_clock_gets_there() -> None:
    clock = ManualClock(start=100.0)
    sleeper = asyncio.create_task(clock.sleep(0.5))
    await asyncio.sleep(0)
    assert clock.sleeping == 1
    clock.advance(0.4)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance_to(100.5)
    await sleeper
    assert clock.sleeping == 0
