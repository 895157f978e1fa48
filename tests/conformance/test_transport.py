"""One suite, every transport: the memory transport keeps Redis's semantics (streams.transport).

Every test runs twice, on memory and on a real redis-server (conftest.py), and
acts only through the StageTransport interface; the backend's adapter only
reads what was written. Consumers "a", "b", "c" are peers in group "s" of
stream "in"; "x" is another group on it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

from streams.delivery import Delivery
from streams.transition import (
    Append,
    DeadLetter,
    Delay,
    ErrorRecord,
    Forward,
    ListPush,
    Op,
    State,
    Transition,
)
from streams.transport import StageTransport
from tests.conformance.conftest import OTHER, Backend
from tests.support.pipelines import wait_for

NOW = 1  # ms of block time for reads that find the stream empty (0 would block until an entry comes)


def forward(deliveries: Sequence[Delivery]) -> list[Transition]:
    return [Transition(d.id, d.request_id, State.FORWARDED, [Forward("out", d.fields[b"d"], d.request_id, 0)])
            for d in deliveries]


def one(d: Delivery, state: State, *ops: Op) -> Transition:
    return Transition(d.id, d.request_id, state, list(ops))


def rids(deliveries: Sequence[Delivery]) -> list[str]:
    return [d.request_id for d in deliveries]


async def written(backend: Backend, stream: str) -> list[bytes]:
    return [f[b"rid"] for _, f in await backend.entries(stream)]


async def joined(backend: Backend, *names: str) -> list[StageTransport]:
    made = [backend.transport(n) for n in names]
    for t in made:
        await t.join()
    return made


async def test_each_entry_is_delivered_to_one_consumer_of_a_group_and_to_every_group(backend: Backend):
    a, b = await joined(backend, "a", "b")
    x = backend.transport("x1", OTHER)
    await x.join()
    ids = await backend.publish(3)

    got = await a.read_new(10, NOW)

    assert [(d.id, d.request_id, d.deliveries) for d in got] == [(ids[i], f"r{i}", 1) for i in range(3)]
    assert [(d.message.stream, d.message.payload) for d in got if d.message] == [("in", {"n": i}) for i in range(3)]
    assert await a.read_new(10, NOW) == []
    assert await b.read_new(10, NOW) == []
    assert rids(await x.read_new(10, NOW)) == ["r0", "r1", "r2"]
    assert await backend.pending() == [(i, "a", 1) for i in ids]


async def test_a_blocked_read_returns_an_entry_published_while_it_waits_and_else_waits_its_time(
    backend: Backend,
):
    [a] = await joined(backend, "a")
    started = time.monotonic()
    assert await a.read_new(10, 50) == []
    assert time.monotonic() - started >= 0.045

    reading = asyncio.create_task(a.read_new(10, 5000))
    await backend.publish(1)
    assert rids(await asyncio.wait_for(reading, 4.0)) == ["r0"]


async def test_commit_acknowledges_each_entry_and_writes_every_kind_of_op(backend: Backend):
    [a] = await joined(backend, "a")
    await backend.publish(6)
    token = await a.token()
    ds = await a.read_new(6, NOW)
    retry = ["v", "1", "d", '{"n":2}', "rid", "r2", "att", "2", "t0", "0"]
    mirror = f"conformance:{uuid.uuid4().hex}"
    batch = [
        one(ds[0], State.FORWARDED, Forward("out", b'{"x":1}', "r0", 7)),
        one(ds[1], State.FAILED, ErrorRecord(b'{"why":"bad"}', "r1", 8)),
        one(ds[2], State.RETRYING, Delay("in", backend.now_ms() + 3_600_000, retry)),
        one(ds[3], State.DEAD_LETTERED, DeadLetter("s", [b"rid", b"r3", b"reason", b"gave up"])),
        one(ds[4], State.HANDED_BACK, Append("in", ds[4].flat)),
        one(ds[5], State.DONE, ListPush(mirror, b'{"m":5}')),
    ]

    verdict = await a.commit(batch, token)

    assert (verdict.token, verdict.fenced) == (token, [])
    assert await backend.pending() == []
    assert [f for _, f in await backend.entries("out")] == [
        {b"v": b"1", b"d": b'{"x":1}', b"rid": b"r0", b"att": b"1", b"t0": b"7"}]
    assert [f for _, f in await backend.entries("errors")] == [
        {b"v": b"1", b"d": b'{"why":"bad"}', b"rid": b"r1", b"att": b"1", b"t0": b"8"}]
    assert await backend.delayed("in") == 1
    assert await backend.dead_letters("s") == [{b"rid": b"r3", b"reason": b"gave up"}]
    entries = await backend.entries("in")
    assert len(entries) == 7 and entries[-1][1] == ds[4].fields
    assert await backend.list(mirror) == [b'{"m":5}']
    states = ["forwarded", "failed", "retrying", "dead_lettered", "handed_back", "done"]
    for d, state in zip(ds, states, strict=True):
        status = await backend.status(d.request_id)
        assert status is not None and (status["stage"], status["state"], status["entry"]) == ("s", state, d.id)


async def test_an_entry_claimed_by_another_consumer_after_being_read_is_fenced_and_nothing_of_it_written(
    backend: Backend,
):
    a, b = await joined(backend, "a", "b")
    ids = await backend.publish(4)
    token = await a.token()
    read = await a.read_new(4, NOW)
    taken = await b.claim_stale(0, 2)  # A stalls past its deadline; B takes the oldest two

    verdict = await a.commit(forward(read), token)

    assert [(d.request_id, d.deliveries) for d in taken] == [("r0", 2), ("r1", 2)]
    assert verdict.fenced == [0, 1]
    assert verdict.token != token, "the claim changed A's token"
    assert await written(backend, "out") == [b"r2", b"r3"]
    assert await backend.pending() == [(ids[0], "b", 2), (ids[1], "b", 2)]
    status = await backend.status("r0")
    assert status is not None and status["state"] == "queued", "a fenced entry records nothing"


async def test_a_claim_changes_the_token_and_entries_marked_suspect_are_checked(backend: Backend):
    a, b = await joined(backend, "a", "b")
    await backend.publish(3)
    before = await a.token()
    first = await a.read_new(2, NOW)
    await b.claim_stale(0, 1)
    after = await a.token()
    later = await a.read_new(10, NOW)  # read under the new token: trusted

    verdict = await a.commit(forward(first + later), after, suspect=[0, 1])

    assert after != before
    assert await b.token() == "", "nothing was taken from B"
    assert (verdict.token, verdict.fenced) == (after, [0])
    assert await written(backend, "out") == [b"r1", b"r2"]


async def test_an_entry_not_marked_suspect_under_the_current_token_is_trusted_without_a_check(
    backend: Backend,
):
    a, b = await joined(backend, "a", "b")
    await backend.publish(1)
    read = await a.read_new(1, NOW)
    await b.claim_stale(0, 1)

    verdict = await a.commit(forward(read), await a.token())  # the caller vouches: its promise

    assert verdict.fenced == []
    assert await written(backend, "out") == [b"r0"]
    assert await backend.pending() == [], "the acknowledgement removes the entry whoever holds it"


async def test_claim_dead_refuses_while_the_heartbeat_lives_then_takes_all_and_deletes_the_consumer(
    backend: Backend,
):
    a, b = await joined(backend, "a", "b")
    await a.heartbeat(30.0)
    ids = await backend.publish(3)
    await a.read_new(3, NOW)
    token = await a.token()
    assert await b.claim_dead("a", 10) == []

    await a.heartbeat(0.05)
    await backend.elapse(0.06)
    first = await wait_for(lambda: b.claim_dead("a", 2))
    assert [(d.request_id, d.deliveries) for d in first] == [("r0", 2), ("r1", 2)]
    assert await b.consumers() == ["a", "b"], "a consumer still holding entries stays"
    assert rids(await b.claim_dead("a", 10)) == ["r2"]

    assert await b.consumers() == ["b"]
    assert await a.token() != token
    assert await backend.pending() == [(i, "b", 2) for i in ids]


async def test_claim_dead_deletes_a_consumer_without_a_heartbeat_that_holds_nothing(backend: Backend):
    a, _ = await joined(backend, "a", "idle")

    assert await a.claim_dead("idle", 10) == []

    assert await a.consumers() == ["a"]


async def test_leaving_drops_the_heartbeat_so_peers_claim_at_once(backend: Backend):
    a, b = await joined(backend, "a", "b")
    await a.heartbeat(30.0)
    await backend.publish(1)
    await a.read_new(1, NOW)
    assert await b.claim_dead("a", 10) == []

    await backend.leave(a)

    assert rids(await b.claim_dead("a", 10)) == ["r0"]


async def test_claim_stale_respects_the_minimum_idle_time_and_never_takes_the_claimers_own(
    backend: Backend,
):
    a, b = await joined(backend, "a", "b")
    ids = await backend.publish(3)
    await a.read_new(2, NOW)
    await b.read_new(1, NOW)
    assert await b.claim_stale(60_000, 10) == []

    await backend.elapse(0.06)
    taken = await wait_for(lambda: b.claim_stale(50, 10))

    assert rids(taken) == ["r0", "r1"]
    assert await b.claim_stale(0, 10) == [], "every entry is B's own now"
    assert await backend.pending() == [(ids[0], "b", 2), (ids[1], "b", 2), (ids[2], "b", 1)]


async def test_own_pending_delivers_a_restarted_consumers_entries_oldest_first_counting_deliveries(
    backend: Backend,
):
    [a] = await joined(backend, "a")
    await backend.publish(3)
    await a.read_new(3, NOW)
    await backend.leave(a)  # the process dies; a new one starts as the same consumer
    [again] = await joined(backend, "a")

    pages = [[(d.request_id, d.deliveries) for d in page] async for page in again.own_pending(2)]
    assert pages == [[("r0", 2), ("r1", 2)], [("r2", 2)]]
    pages = [[(d.request_id, d.deliveries) for d in page] async for page in again.own_pending(10)]
    assert pages == [[("r0", 3), ("r1", 3), ("r2", 3)]]
    assert await again.token() == "", "taking one's own entries fences nobody"


async def test_claim_lost_delivers_again_the_entries_held_but_not_known_to_be(backend: Backend):
    [a] = await joined(backend, "a")
    await backend.publish(3)
    read = await a.read_new(3, NOW)

    lost = await a.claim_lost({read[0].id})

    assert [(d.request_id, d.deliveries) for d in lost] == [("r1", 2), ("r2", 2)]
    assert await a.claim_lost({d.id for d in read}) == []
    assert await a.token() == ""


async def test_renew_resets_the_idle_time_of_entries_still_held_and_skips_those_taken(backend: Backend):
    a, b, c = await joined(backend, "a", "b", "c")
    ids = await backend.publish(2)
    read = await a.read_new(2, NOW)
    await b.claim_stale(0, 1)  # the oldest is B's now
    await backend.elapse(0.2)
    await wait_for(lambda: _idle_at_least(backend, ids[1], 200))

    assert await a.renew([d.id for d in read]) == [ids[1]]
    assert rids(await c.claim_stale(200, 10)) == ["r0"], "only the entry not renewed is stale"
    assert await backend.pending() == [(ids[0], "c", 3), (ids[1], "a", 1)]


async def _idle_at_least(backend: Backend, entry_id: str, ms: int) -> bool:
    return await backend.idle_ms(entry_id) >= ms


async def test_promote_due_moves_back_only_the_retries_that_are_due(backend: Backend):
    [a] = await joined(backend, "a")
    await backend.publish(2)
    read = await a.read_new(2, NOW)
    due = ["v", "1", "d", '{"n":0}', "rid", "r0", "att", "2", "t0", "0"]
    later = ["v", "1", "d", '{"n":1}', "rid", "r1", "att", "2", "t0", "0"]
    await a.commit([one(read[0], State.RETRYING, Delay("in", backend.now_ms() - 1, due)),
                    one(read[1], State.RETRYING, Delay("in", backend.now_ms() + 3_600_000, later))],
                   await a.token())

    assert await a.promote_due() == 1
    assert await a.promote_due() == 0

    assert await backend.delayed("in") == 1
    [retried] = await a.read_new(10, NOW)
    assert retried.flat == [f.encode() for f in due]
    assert retried.message is not None and (retried.message.attempt, retried.message.payload) == (2, {"n": 0})


async def test_trim_drops_only_what_every_group_has_acknowledged(backend: Backend):
    [a] = await joined(backend, "a")
    x = backend.transport("x1", OTHER)
    await x.join()
    await backend.publish(4)
    await a.commit(forward(await a.read_new(4, NOW)), await a.token())
    slow = await x.read_new(2, NOW)
    await x.commit(forward(slow[:1]), await x.token())

    await a.trim()
    assert await written(backend, "in") == [b"r1", b"r2", b"r3"], "group x still holds r1"

    await x.commit(forward(slow[1:]), await x.token())
    await a.trim()
    assert await written(backend, "in") == [b"r2", b"r3"], "group x has not read r2 yet"


async def test_an_entry_handed_back_to_its_source_is_read_again_as_a_new_entry(backend: Backend):
    [a] = await joined(backend, "a")
    await backend.publish(1)
    [d] = await a.read_new(1, NOW)

    await a.commit([one(d, State.HANDED_BACK, Append("in", d.flat))], await a.token())

    [again] = await a.read_new(1, NOW)
    assert again.id != d.id and (again.request_id, again.deliveries) == ("r0", 1)
    assert again.message is not None and again.message.payload == {"n": 0}
    assert await backend.pending() == [(again.id, "a", 1)]
    status = await backend.status("r0")
    assert status is not None and (status["state"], status["entry"]) == ("handed_back", d.id)


async def test_a_claim_drops_an_entry_deleted_from_the_stream_while_pending(backend: Backend):
    a, b = await joined(backend, "a", "b")
    ids = await backend.publish(2)
    await a.read_new(2, NOW)
    await backend.delete("in", ids[0])

    assert rids(await b.claim_stale(0, 10)) == ["r1"]
    assert await backend.pending() == [(ids[1], "b", 2)]


async def test_every_joined_consumer_is_listed_even_before_it_reads(backend: Backend):
    a, _ = await joined(backend, "b", "a")

    assert await a.consumers() == ["a", "b"]


async def test_transient_failures_are_exception_classes_and_each_stream_has_its_own_address(
    backend: Backend,
):
    [a] = await joined(backend, "a")

    assert a.transient and all(issubclass(kind, BaseException) for kind in a.transient)
    assert a.address("in") != a.address("out")
    assert a.address("in").endswith("in")
