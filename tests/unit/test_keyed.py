"""Keyed stages without I/O: the keyed inbox, the router, the stage's lanes, and order on the memory transport."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.delivery import Delivery
from streams.engine.keyed_inbox import KeyedInbox
from streams.errors import InvalidPayload, RetryableError
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.routing import KeyRouter, key_text, partition_of
from streams.stage import Stage
from streams.testing import run_pipeline
from streams.testing.memory_broker import MemoryBroker


def delivery(n: int, key: str) -> Delivery:
    return Delivery(f"{n}-0", [], 1, Message(f"{n}-0", "in", {"k": key}, f"r{n}"))


def inbox_of(keys: str) -> KeyedInbox:
    return KeyedInbox(100, lambda d: d.message.payload["k"] if d.message else d.id)


async def test_the_keyed_inbox_hands_out_the_first_entry_of_each_free_key_and_frees_a_key_at_release() -> None:
    inbox = inbox_of("")
    entries = [delivery(n, k) for n, k in enumerate("aabacb")]
    await inbox.hold(entries, "t")
    await inbox.enqueue(entries)
    first = await inbox.take(10)
    assert [d.id for d in first] == ["0-0", "2-0", "4-0"], "one per key: a, b, c"
    await inbox.release(["2-0"])  # b's outcome committed
    assert [d.id for d in await inbox.take(10)] == ["5-0"], "b's next; a is still busy"
    await inbox.release(["0-0"])
    assert [d.id for d in await inbox.take(10)] == ["1-0"]
    waiting = asyncio.create_task(inbox.take(10))
    await asyncio.sleep(0.01)
    assert not waiting.done(), "a's third waits for its second"
    await inbox.release(["1-0"])
    assert [d.id for d in await asyncio.wait_for(waiting, 1)] == ["3-0"]


@given(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=60), st.integers(1, 5), st.randoms())
async def test_whatever_the_releases_each_key_is_handed_out_in_order_one_at_a_time(
    keys: list[str], limit: int, rng: random.Random
) -> None:
    inbox = inbox_of("")
    entries = [delivery(n, k) for n, k in enumerate(keys)]
    await inbox.hold(entries, "t")
    await inbox.enqueue(entries)
    out: dict[str, list[int]] = defaultdict(list)
    busy: list[Delivery] = []
    while len(busy) + sum(map(len, out.values())) < len(entries) or busy:
        if busy and (rng.random() < 0.5 or not inbox.ready()):
            done = busy.pop(rng.randrange(len(busy)))
            out[done.message.payload["k"]].append(int(done.id.split("-")[0]))  # type: ignore[union-attr]
            await inbox.release([done.id])
            continue
        taken = await asyncio.wait_for(inbox.take(limit), 1)
        assert len({d.message.payload["k"] for d in [*taken, *busy]}) == len(taken) + len(busy)  # type: ignore[union-attr]
        busy += taken
    for key, ns in out.items():
        assert ns == [n for n, k in enumerate(keys) if k == key]


def test_the_router_sends_a_key_always_to_the_same_partition_and_refuses_what_is_no_key() -> None:
    assert partition_of("platform-7", 16) == 12  # crc32: the same in every process and release
    assert key_text({"k": 42}, "k") == "42" and key_text({"k": "é"}, "k") == "é"
    for bad, shown in [({}, "missing"), ({"k": None}, "missing"), ({"k": True}, "a bool"), ({"k": 1.5}, "a float"),
                       ({"k": ""}, "empty"), ({"k": ["a"]}, "a list"), ({"k": "x" * 1025}, "1025 characters")]:
        with pytest.raises(InvalidPayload, match=f"'k' must be a non-empty string or an integer, got {shown}"):
            key_text(bad, "k")


async def test_the_router_forwards_each_message_to_its_partition_and_fails_the_others_alone() -> None:
    router = KeyRouter("k", ["in.p0", "in.p1", "in.p2"])
    messages = [Message(f"{n}-0", "in", p, f"r{n}") for n, p in enumerate([{"k": "a"}, {"x": 1}, {"k": 7}])]
    first, bad, third = await router(messages)
    assert isinstance(bad, InvalidPayload)
    assert [o.stream for o in first] == [f"in.p{partition_of('a', 3)}"]  # type: ignore[union-attr]
    assert [o.payload for o in third] == [{"k": 7}]  # type: ignore[union-attr]


def test_a_keyed_stage_runs_as_a_router_and_one_lane_per_partition() -> None:
    stage = Stage("send", "jobs", _copy, sinks=["sent"], key="platform", partitions=3, concurrency=4)
    router, *parts = stage.lanes
    assert (router.name, router.source, router.group, router.role, router.sinks, router.batched) == (
        "send.route", "jobs", "send", "router", ("jobs.p0", "jobs.p1", "jobs.p2"), True)
    assert [(p.name, p.source, p.group, p.role, p.key) for p in parts] == [
        ("send", f"jobs.p{n}", f"send.p{n}", "partition", "platform") for n in range(3)]
    for bad in [dict(priorities=True), dict(batched=True), dict(partitions=0)]:
        with pytest.raises(ValueError, match=r"keyed stage|partitions must be"):
            Stage("send", "jobs", _copy, key="platform", **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"streams \['jobs.p1'\] have names of lanes"):
        Pipeline("p", [stage, Stage("other", "jobs.p1", _copy)])


async def _copy(message: Message) -> Sequence[Outgoing]:
    return [Outgoing(message.payload)]


async def test_on_the_memory_transport_each_key_runs_alone_in_order_and_keys_run_side_by_side() -> None:
    order: dict[str, list[int]] = defaultdict(list)
    running: set[str] = set()
    most = 0

    async def handle(message: Message) -> Sequence[Outgoing]:
        nonlocal most
        key = message.payload["k"]
        assert key not in running, f"two entries of {key} at once"
        running.add(key)
        most = max(most, len(running))
        await asyncio.sleep(random.random() / 500)
        running.discard(key)
        order[key].append(message.payload["n"])
        return [Outgoing(message.payload)]

    stage = Stage("work", "in", handle, sinks=["out"], key="k", partitions=4, concurrency=8)
    async with run_pipeline(Pipeline("keyed", [stage]), broker=MemoryBroker()) as run:
        await run.publish_many("in", [({"n": n, "k": f"k{n % 12}"}, f"r{n}") for n in range(240)])
        await run.publish("in", {"n": -1}, "no-key")
        await run.drained(within=20)
        assert len(run.stream("out")) == 240
        [error] = run.errors()
    assert all(ns == sorted(ns) and len(ns) == 20 for ns in order.values()) and len(order) == 12
    assert most > 1, "different keys ran side by side"
    assert error["request_id"] == "no-key" and "must be a non-empty string or an integer" in error["error_message"]


async def test_a_retry_waits_in_place_so_the_keys_later_entries_stay_behind_it() -> None:
    order: list[int] = []
    failed: set[int] = set()

    async def flaky(message: Message) -> Sequence[Outgoing]:
        n = message.payload["n"]
        if n % 3 == 0 and n not in failed:
            failed.add(n)
            raise RetryableError("try again")
        order.append(n)
        return [Outgoing(message.payload)]

    stage = Stage("work", "in", flaky, sinks=["out"], key="k", partitions=2, concurrency=4)
    async with run_pipeline(Pipeline("retry", [stage]), broker=MemoryBroker()) as run:
        await run.publish_many("in", [({"n": n, "k": "one"}, f"r{n}") for n in range(10)])
        await run.drained(within=30)
    assert order == list(range(10)) and failed == {0, 3, 6, 9}
