"""Priorities: the gate's order, lanes through a pipeline (memory transport), routing and checks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from streams.engine.gate import PriorityGate
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.priority import LEVELS, Priority, lane, parse_priority, routed
from streams.stage import Stage
from streams.testing import run_pipeline
from streams.testing.memory_broker import MemoryBroker

C, H, N, L = LEVELS


async def settle() -> None:
    """Let the gate hand a freed slot on (the loop's next turn) and its waiter run."""
    for _ in range(3):
        await asyncio.sleep(0)


async def queue_up(gate: PriorityGate, levels: Sequence[Priority], order: list[Priority]) -> list[asyncio.Task[None]]:
    """One waiter per level given, in that order, each recording its level when admitted."""
    async def wait(level: Priority) -> None:
        await gate.acquire(level)
        order.append(level)

    tasks = []
    for level in levels:
        tasks.append(asyncio.create_task(wait(level)))
        await asyncio.sleep(0)
    return tasks


async def test_a_freed_slot_goes_to_the_highest_level_waiting_and_fifo_within_a_level() -> None:
    gate, order = PriorityGate(1), []
    await gate.acquire(N)
    tasks = await queue_up(gate, [L, N, H, L, C, H], order)
    for _ in tasks:
        gate.release()
        await settle()
    assert order == [C, H, H, N, L, L]
    assert gate.started == {C: 1, H: 2, N: 2, L: 2}


async def test_the_share_gives_lower_levels_every_nth_start_while_higher_ones_wait() -> None:
    gate, order = PriorityGate(1, share=0.25), []
    await gate.acquire(C)
    tasks = await queue_up(gate, [C] * 20 + [L] * 20, order)
    for _ in range(25):
        gate.release()
        await settle()
    assert order[:10] == [C, C, C, C, L, C, C, C, C, L], "one start in five goes down a level"
    assert order.count(L) == 5 and order.count(C) == 20
    for task in tasks:
        task.cancel()


async def test_without_a_share_a_flood_of_critical_starts_no_lower_task() -> None:
    gate, order = PriorityGate(1), []
    await gate.acquire(C)
    tasks = await queue_up(gate, [L] + [C] * 30, order)
    for _ in range(30):
        gate.release()
        await settle()
    assert order == [C] * 30
    for task in tasks:
        task.cancel()


async def test_a_waiter_cancelled_takes_no_slot_and_one_granted_as_it_is_cancelled_passes_it_on() -> None:
    gate, order = PriorityGate(1), []
    await gate.acquire(N)
    [high, low] = await queue_up(gate, [H, L], order)
    high.cancel()
    await settle()
    gate.release()
    await settle()
    assert order == [L]
    [critical, normal] = await queue_up(gate, [C, N], order)
    gate.release()
    await asyncio.sleep(0)  # the slot is granted to critical ...
    critical.cancel()  # ... which is cancelled before it runs: its slot goes to normal
    await settle()
    assert order == [L, N]
    assert all(t.done() for t in (high, low, critical, normal))


@pytest.mark.parametrize(("given", "level"), [("critical", C), ("high", H), ("normal", N), (4, L), (1, C), (H, H)])
def test_a_priority_is_a_level_name_or_bulls_number(given: object, level: Priority) -> None:
    assert parse_priority(given) is level


@pytest.mark.parametrize("given", [0, 5, -1, True, 2.0, "urgent", "HIGH", "Normal", "", None, [1], "1"])
def test_anything_else_is_refused_naming_the_choices(given: object) -> None:
    with pytest.raises(ValueError, match="priority must be one of critical, high, normal, low"):
        parse_priority(given)


def test_a_lane_is_the_stream_for_normal_and_suffixed_otherwise() -> None:
    assert [lane("ocr", level) for level in LEVELS] == ["ocr.critical", "ocr.high", "ocr", "ocr.low"]
    assert routed("ocr", "high", {"ocr"}) == "ocr.high"
    assert routed("ocr", None, set()) == routed("ocr", "normal", set()) == "ocr"
    with pytest.raises(ValueError, match="stream 'in' is not read by priority"):
        routed("in", "critical", {"ocr"})


def echo(seen: list[tuple[str, int]]):
    async def handle(message: Message) -> Sequence[Outgoing]:
        seen.append((message.stream, message.payload["n"]))
        return [Outgoing(message.payload)]
    return handle


def test_a_stage_with_priorities_runs_as_four_lanes_and_pipelines_refuse_what_would_lose_tasks() -> None:
    stage = Stage("ocr", "tasks", echo([]), sinks=["out"], priorities=True, priority_share=0.1)
    assert [(s.source, s.group, s.level) for s in stage.lanes] == [
        ("tasks.critical", "ocr.critical", C), ("tasks.high", "ocr.high", H), ("tasks", "ocr", N),
        ("tasks.low", "ocr.low", L)]
    assert Pipeline("p", [stage]).prioritized == {"tasks"}
    with pytest.raises(ValueError, match="reads stream 'tasks' without priorities"):
        Pipeline("p", [stage, Stage("audit", "tasks", echo([]))])
    with pytest.raises(ValueError, match=r"streams \['tasks.low'\] have names of lanes"):
        Pipeline("p", [stage, Stage("other", "tasks.low", echo([]))])
    with pytest.raises(ValueError, match="priority_share needs priorities=True"):
        Stage("x", "in", echo([]), priority_share=0.1)
    with pytest.raises(ValueError, match=r"priority_share must be within 0 and 0\.5"):
        Stage("x", "in", echo([]), priorities=True, priority_share=0.9)


async def test_tasks_start_by_level_then_in_publish_order_across_the_lanes() -> None:
    started: list[tuple[str, int]] = []
    gate = asyncio.Event()

    async def handle(message: Message) -> Sequence[Outgoing]:
        if message.payload["n"] == -1:
            await gate.wait()  # holds the stage's one slot while everything else is read
        started.append((message.payload["level"], message.payload["n"]))
        return [Outgoing(message.payload)]

    stage = Stage("work", "in", handle, sinks=["out"], priorities=True, concurrency=1)
    broker = MemoryBroker()
    async with run_pipeline(Pipeline("prio", [stage]), broker=broker) as run:
        await run.publish("in", {"n": -1, "level": "normal"}, "blocker")
        await asyncio.sleep(0.05)
        items = [({"n": n, "level": level}, f"r{n}", level) for n in range(40)
                 for level in ["low", "normal", "high", "critical"][n % 4:n % 4 + 1]]
        await run.publish_many("in", items)
        await asyncio.sleep(0.05)
        gate.set()
        await run.drained(within=10)
        assert len(run.stream("out")) == 41
    rest = started[1:]
    ranks = {"critical": 0, "high": 1, "normal": 2, "low": 3}
    assert rest == sorted(rest, key=lambda s: (ranks[s[0]], s[1])), rest
    assert broker.streams["in.critical"].ids and broker.streams["in.low"].ids


async def test_a_task_keeps_its_level_downstream_unless_its_handler_sets_another() -> None:
    seen: list[tuple[str, int]] = []

    async def first(message: Message) -> Sequence[Outgoing]:
        n = message.payload["n"]
        return [Outgoing(message.payload, priority="low" if n == 2 else None)]

    async def bad(message: Message) -> Sequence[Outgoing]:
        return [Outgoing(message.payload, priority="urgent")]

    pipeline = Pipeline("keep", [
        Stage("a", "in", first, sinks=["mid"], priorities=True),
        Stage("b", "mid", echo(seen), sinks=["out"], priorities=True),
        Stage("c", "bad", bad, sinks=["mid"]),
    ])
    async with run_pipeline(pipeline) as run:
        await run.publish("in", {"n": 1}, "r1", priority="high")
        await run.publish("in", {"n": 2}, "r2", priority="critical")
        await run.publish("in", {"n": 3}, "r3")
        await run.publish("bad", {"n": 4}, "r4")
        await run.drained(within=10)
        [error] = run.errors()
    assert sorted(seen) == [("mid", 3), ("mid.high", 1), ("mid.low", 2)]
    assert "output rejected" in error["error_message"] and "priority must be one of" in error["error_message"]


async def test_publishing_a_level_to_a_stream_not_read_by_priority_fails_before_anything_is_added() -> None:
    pipeline = Pipeline("plain", [Stage("a", "in", echo([]), sinks=["out"])])
    async with run_pipeline(pipeline) as run:
        with pytest.raises(ValueError, match="is not read by priority"):
            await run.publish_many("in", [({"n": 1}, "r1"), ({"n": 2}, "r2", "high")])
        assert run.broker.streams.get("in") is None or not run.broker.streams["in"].ids
