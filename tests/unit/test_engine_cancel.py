"""The runner's side of a cancel over the in-memory transport: where each held entry is when it is cancelled.

One real StageRunner (the Rig of test_engine_runner) on a MemoryBroker; upkeep runs every
10 ms of real time. Cancels are made with ``MemoryBroker.cancel``; ``runner.cancels.active``
says the runner learned that one exists.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from streams.delivery import to_delivery
from streams.engine.inbox import Inbox
from streams.message import Message, Outgoing
from streams.testing.memory_streams import format_id
from tests.unit.test_engine_runner import Gate, Rig, copy, stage


async def test_a_handler_that_swallows_the_cancellation_still_ends_cancelled_and_its_outputs_are_dropped() -> None:
    entered = asyncio.Event()

    async def stubborn(message: Message) -> Sequence[Outgoing]:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # it must not be interrupted: returns what it has
            await asyncio.Event().wait()
        return await copy(message)

    rig = Rig(stage(stubborn))
    async with rig:
        await rig.publish(1)
        await asyncio.wait_for(entered.wait(), 2)
        rig.broker.cancel("r0", "oncall-jo", "stop")
        await rig.until(lambda: rig.state("r0") == "cancelled")
        assert rig.stream("out").ids == []
        assert rig.runner.cancels.cancelling == {}
        assert rig.count("stage_retried_total") == 0


async def test_a_task_cancelled_while_queued_in_the_inbox_is_withdrawn_without_running() -> None:
    gate = Gate()
    rig = Rig(stage(gate, concurrency=2, max_in_flight=4))
    async with rig:
        await rig.publish(4)
        await rig.until(lambda: len(gate.started) == 2 and rig.runner.inbox.held == 4)
        rig.broker.cancel("r3", "oncall-jo")
        await rig.until(lambda: rig.state("r3") == "cancelled")
        gate.open()
        await rig.until(lambda: len(rig.stream("out")) == 3)
    assert sorted(gate.started) == ["r0", "r1", "r2"]
    assert rig.broker.status["r3"]["detail"] == {"error": "cancelled by oncall-jo: no reason given"}


async def test_a_runner_stops_looking_up_read_batches_once_no_cancel_counts() -> None:
    rig = Rig(stage(copy))
    async with rig:
        rig.broker.cancel("r9", "oncall-jo")
        await rig.until(lambda: rig.runner.cancels.active)
        rig.broker.cancels.clear()  # as Redis expires the hash with its latest cancel
        await rig.until(lambda: not rig.runner.cancels.active)
        calls = []
        lookup = rig.runner.transport.cancelled

        async def counted(request_ids: Sequence[str]):  # type: ignore[no-untyped-def]
            calls.append(list(request_ids))
            return await lookup(request_ids)

        rig.runner.transport.cancelled = counted  # type: ignore[method-assign]
        await rig.publish(5)
        await rig.until(lambda: len(rig.stream("out")) == 5)
    assert calls == [], "no lookup per batch while no cancel exists"


def test_withdrawing_takes_only_the_named_tasks_out_of_the_queue_and_keeps_them_held() -> None:
    inbox = Inbox(10)
    ds = [to_delivery("in", format_id((1, i)), [b"d", b"{}", b"rid", f"r{i}".encode()], 1) for i in range(4)]

    async def fill() -> None:
        await inbox.hold(ds, "")
        await inbox.enqueue(ds)
    asyncio.run(fill())

    taken = inbox.withdraw({"r1", "r3"})

    assert [d.request_id for d in taken] == ["r1", "r3"]
    assert [d.request_id for d in inbox.queued()] == ["r0", "r2"]
    assert inbox.held == 4
