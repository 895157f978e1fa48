"""The outbox hands the committer what is ready in batches, and knows when all of it is committed."""

from __future__ import annotations

import asyncio

from streams.engine.outbox import Outbox
from streams.transition import State, Transition


def transition(n: int) -> Transition:
    return Transition(f"{n}-0", f"r{n}", State.DONE, ())


async def settle() -> None:
    """Let every task that is ready run until it waits again (no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_take_returns_what_is_ready_in_batches_of_at_most_the_limit() -> None:
    outbox = Outbox()
    for n in range(5):
        outbox.put(transition(n))

    assert await outbox.take(2) == [transition(0), transition(1)]
    assert await outbox.take(2) == [transition(2), transition(3)]
    assert await outbox.take(10) == [transition(4)], "what is ready, without waiting for a full batch"


async def test_take_waits_for_at_least_one_transition() -> None:
    outbox = Outbox()
    taking = asyncio.create_task(outbox.take(10))
    await settle()
    assert not taking.done()

    outbox.put(transition(1))
    outbox.put(transition(2))

    assert await asyncio.wait_for(taking, 1) == [transition(1), transition(2)]


async def test_take_waits_again_once_everything_ready_was_taken() -> None:
    outbox = Outbox()
    outbox.put(transition(1))
    assert await outbox.take(10) == [transition(1)]
    taking = asyncio.create_task(outbox.take(10))
    await settle()
    assert not taking.done(), "an earlier put does not leave it ready"
    outbox.put(transition(2))
    assert await asyncio.wait_for(taking, 1) == [transition(2)]


async def test_drained_returns_at_once_when_nothing_was_put() -> None:
    await asyncio.wait_for(Outbox().drained(), 1)


async def test_drained_waits_until_every_transition_put_is_done_not_just_taken() -> None:
    outbox = Outbox()
    for n in range(3):
        outbox.put(transition(n))
    draining = asyncio.create_task(outbox.drained())

    assert len(await outbox.take(10)) == 3
    await settle()
    assert not draining.done(), "taken is not committed"
    outbox.done(2)
    await settle()
    assert not draining.done(), "one is still uncommitted"
    outbox.done(1)

    await asyncio.wait_for(draining, 1)


async def test_a_put_after_draining_makes_drained_wait_again() -> None:
    outbox = Outbox()
    outbox.put(transition(1))
    outbox.done(len(await outbox.take(10)))
    await asyncio.wait_for(outbox.drained(), 1)

    outbox.put(transition(2))
    draining = asyncio.create_task(outbox.drained())
    await settle()
    assert not draining.done()
    outbox.done(len(await outbox.take(10)))
    await asyncio.wait_for(draining, 1)
