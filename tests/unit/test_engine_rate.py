"""Handling admits a rated stage's attempts at its rate, outside their timeout (memory transport).

The limit lives on a MemoryBroker with a ManualClock: an attempt waiting for
its slot sleeps on the clock (``ManualClock.sleep``) until the test advances
it, so these tests wait on barriers (who is asleep, who has started), never on
real time, except the timeout test, whose point is real time passing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest
from prometheus_client import CollectorRegistry

import streams.engine.handling as handling_module
from streams.engine.handling import Handling
from streams.engine.outcomes import Outcomes
from streams.errors import TransportError
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.rates import Limiter
from streams.stage import Stage
from streams.testing import ManualClock, MemoryBroker, MemoryTransport
from streams.transition import State, Transition
from tests.unit.test_engine_handling import delivery

LABELS = {"pipeline": "p", "stage": "translate"}


class Starts:
    """A processor recording the clock's time when each attempt began (one per message of a batch)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock, self.at = clock, []

    async def __call__(self, message: Message) -> Sequence[Outgoing]:
        self.at.append(self.clock())
        return [Outgoing(message.payload)]

    async def batch(self, messages: Sequence[Message]) -> list[Sequence[Outgoing]]:
        self.at.extend(self.clock() for _ in messages)
        return [[Outgoing(m.payload)] for m in messages]


class Rated:
    """A Handling of stage "translate" whose rate is kept by a MemoryTransport on ``broker``."""

    def __init__(self, broker: MemoryBroker, processor: object, limiter: Limiter | None = None,
                 **stage: object) -> None:
        options: dict[str, object] = {"rate": "10/s", "timeout": 10.0, **stage}
        self.stage = Stage("translate", "tasks", processor, sinks=("out",), **options)  # type: ignore[arg-type]
        self.registry = CollectorRegistry()
        outcomes = Outcomes(self.stage, "c-1", "tasks", 4096)
        limiter = limiter or MemoryTransport(broker, "p").limiter(self.stage)
        self.handling = Handling(self.stage, processor, outcomes,  # type: ignore[arg-type]
                                 Metrics(self.registry).for_stage("p", "translate"), limiter)

    def count(self, name: str) -> float:
        return self.registry.get_sample_value(f"millstream_{name}", LABELS) or 0.0

    async def one(self, n: int = 1) -> Transition:
        async with self.handling.watchdog.worker() as slot:
            return await self.handling.one(delivery(n), slot)

    async def batch(self, ns: Sequence[int]) -> list[Transition]:
        async with self.handling.watchdog.worker() as slot:
            return await self.handling.batch([delivery(n) for n in ns], slot)


async def until(check: Callable[[], bool]) -> None:
    """Yield to the loop until ``check()``: a barrier on in-process state (fails after 1000 turns)."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_000.0)


async def test_attempts_start_one_interval_apart_and_only_as_the_clock_moves(clock: ManualClock) -> None:
    starts = Starts(clock)
    engine = Rated(MemoryBroker(clock), starts)
    work = [asyncio.create_task(engine.one(n)) for n in range(3)]
    await until(lambda: len(starts.at) == 1 and clock.sleeping == 2)
    clock.advance(0.099)
    await until(lambda: clock.sleeping == 2)
    assert len(starts.at) == 1, "no attempt starts before its slot"
    clock.advance(0.001)
    await until(lambda: len(starts.at) == 2)
    clock.advance(0.1)
    transitions = await asyncio.gather(*work)
    assert starts.at == pytest.approx([1_000.0, 1_000.1, 1_000.2])
    assert [t.state for t in transitions] == [State.FORWARDED] * 3


async def test_consumers_in_other_processes_share_the_stage_limit(clock: ManualClock) -> None:
    broker = MemoryBroker(clock)
    starts = Starts(clock)
    here, there = Rated(broker, starts), Rated(broker, starts)  # two transports: two processes
    first = asyncio.create_task(here.one(1))
    await until(lambda: len(starts.at) == 1)
    second = asyncio.create_task(there.one(2))
    await until(lambda: clock.sleeping == 1)
    clock.advance(0.1)
    await asyncio.gather(first, second)
    assert starts.at == pytest.approx([1_000.0, 1_000.1])


async def test_waiting_counts_as_throttled_once_per_attempt_with_the_seconds_waited(clock: ManualClock) -> None:
    engine = Rated(MemoryBroker(clock), Starts(clock))
    await engine.one(1)
    assert (engine.count("stage_throttled_total"), engine.count("stage_throttled_seconds_total")) == (0, 0)
    waiting = asyncio.create_task(engine.one(2))
    await until(lambda: clock.sleeping == 1)
    clock.advance(0.1)
    await waiting
    assert engine.count("stage_throttled_total") == 1
    assert engine.count("stage_throttled_seconds_total") == pytest.approx(0.1)


async def test_a_batch_takes_one_slot_per_message_and_starts_when_it_has_them_all(clock: ManualClock) -> None:
    starts = Starts(clock)
    engine = Rated(MemoryBroker(clock), starts.batch, batched=True)
    work = asyncio.create_task(engine.batch([1, 2, 3]))
    for _ in range(2):
        await until(lambda: clock.sleeping == 1)
        assert starts.at == []
        clock.advance(0.1)
    transitions = await work
    assert starts.at == pytest.approx([1_000.2] * 3)
    assert [t.state for t in transitions] == [State.FORWARDED] * 3
    assert engine.count("stage_throttled_total") == 1
    assert engine.count("stage_throttled_seconds_total") == pytest.approx(0.2)


async def test_waiting_for_a_slot_is_not_part_of_the_handlers_timeout() -> None:
    # Real time: the second attempt waits 0.2 s for its slot, four times its timeout.
    engine = Rated(MemoryBroker(), Starts(lambda: 0.0), rate="5/s", timeout=0.05)
    checks = asyncio.create_task(engine.handling.watchdog.run())
    try:
        first, second = await asyncio.wait_for(asyncio.gather(engine.one(1), engine.one(2)), 5)
    finally:
        checks.cancel()
    assert (first.state, second.state) == (State.FORWARDED, State.FORWARDED)
    assert engine.count("stage_throttled_seconds_total") >= 0.15
    assert engine.count("stage_failed_total") == 0


class Flaky:
    """A limiter whose store is unreachable for the first ``outages`` asks."""

    def __init__(self, outages: int, error: Exception | None = None) -> None:
        self.outages, self.error, self.asked = outages, error, 0

    async def acquire(self) -> float:
        self.asked += 1
        if self.error is not None:
            raise self.error
        if self.asked <= self.outages:
            raise TransportError("rate limit mst:{p}:ratelimit:stage.translate: Connection refused")
        return 0.0


async def test_an_outage_of_the_limit_is_waited_out_and_costs_no_attempt(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(handling_module, "ADMIT_RETRY", 0.0)
    limiter = Flaky(outages=2)
    t = await Rated(MemoryBroker(clock), Starts(clock), limiter).one()
    assert (t.state, limiter.asked) == (State.FORWARDED, 3)
    assert "stage translate: rate limit unreachable" in caplog.text


async def test_a_limiter_that_fails_otherwise_fails_the_attempt_which_is_decided(clock: ManualClock) -> None:
    starts = Starts(clock)
    t = await Rated(MemoryBroker(clock), starts, Flaky(0, RuntimeError("a bug"))).one()
    assert t.state is State.RETRYING and starts.at == []


def test_a_stage_with_a_rate_refuses_to_run_without_the_transports_limiter(clock: ManualClock) -> None:
    stage = Stage("translate", "tasks", Starts(clock), rate="10/s")
    with pytest.raises(ValueError, match="rate '10/s' needs the transport's limiter"):
        Handling(stage, stage.processor, Outcomes(stage, "c-1", "tasks", 4096),
                 Metrics(CollectorRegistry()).for_stage("p", "translate"))
