"""run_pipeline with a rated stage: its slots come on the harness's clock, not in real time."""

from __future__ import annotations

from collections.abc import Sequence

from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.stage import Stage
from streams.testing import ManualClock, MemoryBroker, run_pipeline


async def test_a_stage_at_one_a_minute_drains_five_tasks_in_five_minutes_of_the_clock() -> None:
    clock = ManualClock(start=1_000.0)
    started: list[float] = []

    async def translate(message: Message) -> Sequence[Outgoing]:
        started.append(clock())
        return [Outgoing(message.payload)]

    pipeline = Pipeline("rated", [Stage("translate", "tasks", translate, sinks=["done"], rate="1/m",
                                        concurrency=2, rate_horizon=5.0)])
    async with run_pipeline(pipeline, broker=MemoryBroker(clock)) as run:
        for n in range(5):
            await run.publish("tasks", {"n": n}, f"r{n}")
        await run.drained(within=10)
        assert [p["n"] for p in run.stream("done")] == list(range(5))
    assert [round(at - started[0]) for at in started] == [0, 60, 120, 180, 240]
