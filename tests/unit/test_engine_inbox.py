"""The inbox bounds what a runner holds, remembers each entry's fence token, and hands back at close."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

import streams.engine.inbox as inbox_module
from streams.codec import encode_payload, envelope
from streams.delivery import Delivery, to_delivery
from streams.engine.inbox import Inbox


def delivery(entry_id: str) -> Delivery:
    flat = [f.encode() for f in envelope(encode_payload({"n": entry_id}), f"r-{entry_id}", 1, 0)]
    return to_delivery("tasks", entry_id, flat, 1)


async def settle() -> None:
    """Let every task that is ready run until it waits again (no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def held(inbox: Inbox, ids: list[str], token: str = "t1") -> list[Delivery]:
    ds = [delivery(i) for i in ids]
    await inbox.hold(ds, token)
    return ds


async def test_room_waits_while_the_inbox_is_full_and_wakes_on_release() -> None:
    inbox = Inbox(2)
    await held(inbox, ["1-0", "2-0"])
    waiting = asyncio.create_task(inbox.room())
    await settle()
    assert not waiting.done(), "no room while capacity entries are held"

    await inbox.release(["1-0"])

    assert await asyncio.wait_for(waiting, 1) == 1


async def test_room_reports_how_many_more_entries_may_be_held() -> None:
    inbox = Inbox(5)
    await held(inbox, ["1-0", "2-0"])
    assert await inbox.room() == 3
    assert inbox.free() == 3


async def test_an_entry_is_held_from_read_until_commit_wherever_it_is() -> None:
    inbox = Inbox(10)
    ds = await held(inbox, ["1-0", "2-0", "3-0"])
    assert inbox.held == 3, "held once read, before it is queued"

    await inbox.enqueue(ds)
    assert inbox.held == 3
    taken = await inbox.take(2)
    assert [d.id for d in taken] == ["1-0", "2-0"]
    assert inbox.held == 3, "still held while a handler has it"

    await inbox.release(["1-0", "2-0"])
    assert inbox.held == 1
    assert "3-0" in inbox and "1-0" not in inbox


async def test_holding_an_entry_again_does_not_count_it_twice() -> None:
    inbox = Inbox(3)
    await held(inbox, ["1-0"], "t1")
    await held(inbox, ["1-0"], "t2")
    assert inbox.held == 1
    assert inbox.suspects(["1-0"], "t2") == [], "the latest hold's token is the one remembered"


async def test_suspects_are_the_entries_not_held_under_the_current_fence_token() -> None:
    inbox = Inbox(10)
    await held(inbox, ["1-0", "2-0"], "t1")
    await held(inbox, ["3-0"], "t2")

    assert inbox.suspects(["1-0", "3-0", "2-0"], "t2") == [0, 2]
    assert inbox.suspects(["1-0", "3-0", "2-0"], "t1") == [1]
    assert inbox.suspects(["9-0", "3-0"], "t2") == [0], "an entry not held at all is a suspect"


async def test_held_since_finds_entries_older_than_a_time_and_touch_renews_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(inbox_module, "time", SimpleNamespace(monotonic=lambda: clock.now, time=lambda: 5.0))
    inbox = Inbox(10)
    await held(inbox, ["1-0", "2-0"])
    clock.now = 110.0
    await held(inbox, ["3-0"])

    assert inbox.held_since(105.0) == ["1-0", "2-0"]
    assert inbox.held_since(100.0) == [], "strictly older than the time given"

    clock.now = 120.0
    inbox.touch(["1-0", "9-0"])
    assert inbox.held_since(115.0) == ["2-0", "3-0"]
    assert "9-0" not in inbox, "touching an entry not held does not hold it"
    assert inbox.suspects(["1-0"], "t1") == [], "touch keeps the entry's fence token"


async def test_take_returns_at_most_its_limit_in_queue_order() -> None:
    inbox = Inbox(10)
    await inbox.enqueue(await held(inbox, ["1-0", "2-0", "3-0", "4-0", "5-0"]))

    assert [d.id for d in await inbox.take()] == ["1-0"]
    assert [d.id for d in await inbox.take(3)] == ["2-0", "3-0", "4-0"]
    assert [d.id for d in await inbox.take(10)] == ["5-0"], "what is queued, not waiting for more"


async def test_take_waits_until_something_is_queued() -> None:
    inbox = Inbox(10)
    taking = asyncio.create_task(inbox.take(5))
    await settle()
    assert not taking.done()

    await inbox.enqueue(await held(inbox, ["1-0"]))

    assert [d.id for d in await asyncio.wait_for(taking, 1)] == ["1-0"]


async def test_close_returns_the_entries_no_handler_started() -> None:
    inbox = Inbox(3)
    await inbox.enqueue(await held(inbox, ["1-0", "2-0", "3-0"]))
    assert [d.id for d in await inbox.take()] == ["1-0"]

    assert [d.id for d in await inbox.close()] == ["2-0", "3-0"]
    assert inbox.closed and inbox.held == 3, "unstarted entries stay held until their hand-back commits"
    assert await inbox.close() == [], "each is returned once"


async def test_close_wakes_the_handlers_waiting_for_work_and_the_reader_waiting_for_room() -> None:
    inbox = Inbox(1)
    await held(inbox, ["1-0"])
    taking = asyncio.create_task(inbox.take())
    waiting_for_room = asyncio.create_task(inbox.room())
    await settle()
    assert not taking.done() and not waiting_for_room.done()

    await inbox.close()

    assert await asyncio.wait_for(taking, 1) == []
    assert await asyncio.wait_for(waiting_for_room, 1) == 0, "closed: the reader stops waiting"


async def test_take_after_close_returns_nothing_even_with_entries_queued_since() -> None:
    inbox = Inbox(3)
    await inbox.close()
    await inbox.enqueue(await held(inbox, ["1-0"]))
    assert await inbox.take() == []


async def test_releasing_ids_that_are_not_held_changes_nothing() -> None:
    inbox = Inbox(2)
    await held(inbox, ["1-0"])
    await inbox.release(["9-0", "8-0"])
    assert inbox.held == 1 and inbox.free() == 1


async def test_free_never_goes_below_zero_when_more_than_capacity_are_held() -> None:
    inbox = Inbox(1)
    await held(inbox, ["1-0", "2-0"])  # a claim may hold a batch past the mark
    assert inbox.free() == 0


async def test_holding_reports_when_each_entry_was_read_and_renewals_do_not_change_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(inbox_module, "time", SimpleNamespace(monotonic=lambda: clock.now,
                                                              time=lambda: clock.now + 1000))
    inbox = Inbox(10)
    await held(inbox, ["1-0"])
    clock.now = 103.0
    await held(inbox, ["2-0", "3-0"])
    inbox.touch(["1-0"])
    assert inbox.holding(10) == {"1-0": 1_100_000, "2-0": 1_103_000, "3-0": 1_103_000}
    assert inbox.holding(2) == {"1-0": 1_100_000, "2-0": 1_103_000}  # the oldest first, bounded
    await inbox.release(["1-0"])
    assert list(inbox.holding(10)) == ["2-0", "3-0"]
