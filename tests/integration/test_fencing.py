"""Fencing with tokens: a commit skips the ownership check only where nothing can have been taken.

Each test plays two consumers of one group by hand: A reads, B claims A's
entries, and A commits afterwards, as a stalled worker would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
from redis.asyncio import Redis

from streams.delivery import Delivery
from streams.redis.commit import Committer
from streams.redis.consumer import GroupConsumer
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.tasks import task_status
from streams.transition import Append, Forward, State, Transition


def committer(redis: Redis, keys: Keys, consumer: str) -> Committer:
    return Committer(redis, keys, keys.stream("in"), "g", consumer, "s", 60_000, 1000, 100)


def forward(keys: Keys, deliveries: list[Delivery]) -> list[Transition]:
    return [Transition(d.id, d.request_id, State.FORWARDED, [Forward("out", d.fields[b"d"],
                                                                  d.request_id, 0)])
            for d in deliveries]


async def publish(redis: Redis, keys: Keys, n: int, start: int = 0) -> None:
    await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(start, start + n)])


@dataclass
class Consumer:
    """Consumer "a" of group "g" on stream "in": its reads, its commits, its token at start."""

    group: GroupConsumer
    committer: Committer
    token: str


@pytest.fixture
async def a(redis: Redis, keys: Keys) -> AsyncIterator[Consumer]:
    group = GroupConsumer(redis, keys, "in", "g", "a")
    await group.ensure_group()
    commits = committer(redis, keys, "a")
    yield Consumer(group, commits, await commits.token())
    await group.close()
    await commits.close()


async def xpending_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xpending", {}).get("calls", 0))


async def test_entries_claimed_from_a_stalled_consumer_are_fenced_and_later_ones_commit(
    redis: Redis, keys: Keys, a: Consumer
):
    b = GroupConsumer(redis, keys, "in", "g", "b")
    await publish(redis, keys, 6)
    before = await a.group.read_new(6, 0)
    taken = await b.claim_stale(0, 3)  # A stalls past its deadline; B takes the oldest three
    assert len(taken) == 3
    await publish(redis, keys, 2, start=6)
    after = await a.group.read_new(10, 0)  # read after the claim, under the token A still believes in

    verdict = await a.committer.commit(forward(keys, before + after), a.token)

    assert verdict.token != a.token, "the claim changed A's token"
    assert verdict.fenced == [0, 1, 2]
    out = [f[b"rid"] for _, f in await redis.xrange(keys.stream("out"))]
    assert out == [b"r3", b"r4", b"r5", b"r6", b"r7"]
    assert await redis.xpending(keys.stream("in"), "g") == {
        "pending": 3, "min": taken[0].id.encode(), "max": taken[-1].id.encode(),
        "consumers": [{"name": b"b", "pending": 3}]}


async def test_a_commit_under_the_current_token_skips_the_ownership_check(
    redis: Redis, keys: Keys, a: Consumer
):
    await publish(redis, keys, 5)
    held = await a.group.read_new(5, 0)
    calls = await xpending_calls(redis)

    verdict = await a.committer.commit(forward(keys, held), a.token)

    assert verdict.fenced == []
    assert await xpending_calls(redis) == calls, "no XPENDING on the fast path"
    assert await redis.xlen(keys.stream("out")) == 5


async def test_suspect_entries_are_checked_even_under_the_current_token(
    redis: Redis, keys: Keys, a: Consumer
):
    await publish(redis, keys, 3)
    held = await a.group.read_new(3, 0)
    await GroupConsumer(redis, keys, "in", "g", "b").claim_stale(0, 1)
    token = await a.committer.token()  # A learnt the new token, but held[0] was read before it

    verdict = await a.committer.commit(forward(keys, held), token, suspect=[0])

    assert verdict.fenced == [0]
    assert await redis.xlen(keys.stream("out")) == 2


async def test_a_commit_repeated_after_a_lost_reply_writes_nothing_twice(
    redis: Redis, keys: Keys, a: Consumer
):
    await publish(redis, keys, 4)
    batch = forward(keys, await a.group.read_new(4, 0))
    await a.committer.commit(batch, a.token)

    again = await a.committer.commit(batch, a.token, suspect=range(4))  # what the runner sends on a retry

    assert again.fenced == [0, 1, 2, 3]
    assert await redis.xlen(keys.stream("out")) == 4


async def test_claiming_ones_own_pending_entries_leaves_the_token_alone(
    redis: Redis, keys: Keys, a: Consumer
):
    await publish(redis, keys, 2)
    await a.group.read_new(2, 0)
    [page] = [p async for p in a.group.own_pending(10)]  # a restart re-reads its own entries

    verdict = await a.committer.commit(forward(keys, page), a.token)

    assert (verdict.token, verdict.fenced) == (a.token, [])


async def test_a_mixed_batch_skips_just_the_fenced_entries_and_records_the_rest(
    redis: Redis, keys: Keys, a: Consumer
):
    await publish(redis, keys, 6)
    held = await a.group.read_new(6, 0)
    out, other, errors = "out", "other", "errors"

    def forward_to(stream: str, d: Delivery) -> Transition:
        return Transition(d.id, d.request_id, State.FORWARDED, [Forward(stream, d.fields[b"d"], d.request_id, 0)])

    def fail(d: Delivery) -> Transition:
        return Transition(d.id, d.request_id, State.FAILED, [Append(errors, ["rid", d.request_id])])

    # runs of forwards to two streams, broken by other transitions; B takes entries 1 and 3
    batch = [forward_to(out, held[0]), forward_to(out, held[1]), fail(held[2]), fail(held[3]),
             forward_to(other, held[4]), forward_to(out, held[5])]
    await redis.xclaim(keys.stream("in"), "g", "b", 0, [held[1].id, held[3].id])

    verdict = await a.committer.commit(batch, a.token, suspect=range(6))

    assert verdict.fenced == [1, 3]
    assert [f[b"rid"] for _, f in await redis.xrange(keys.stream(out))] == [b"r0", b"r5"]
    assert [f[b"rid"] for _, f in await redis.xrange(keys.stream(other))] == [b"r4"]
    assert [f[b"rid"] for _, f in await redis.xrange(keys.stream(errors))] == [b"r2"]
    [event] = [e for _, e in await redis.xrange(keys.events) if e[b"stage"] == b"s"]
    assert orjson.loads(event[b"t"]) == [
        ["r0", "forwarded", held[0].id], ["r2", "failed", held[2].id],
        ["r4", "forwarded", held[4].id], ["r5", "forwarded", held[5].id]]
    record = await task_status(redis, keys, "r2", 60)
    assert {k: v for k, v in record.items() if k not in ("trail", "detail")} == {
        "stage": "s", "state": "failed", "entry": held[2].id, "at": orjson.loads(event[b"at"])}
    assert (await task_status(redis, keys, "r1", 60))["state"] == "queued"  # published; not A's to record
