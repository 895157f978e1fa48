"""Owned streams (a keyed stage's router and partitions): one reader at a time, by lease, on both transports."""

from __future__ import annotations

from streams.transition import Forward, State, Transition
from tests.conformance.conftest import Backend
from tests.conformance.test_transport import joined, rids
from tests.support.pipelines import wait_for

TTL_MS = 300


async def test_a_lease_has_one_holder_until_released_or_expired(backend: Backend):
    a, b = await joined(backend, "a", "b")
    assert await a.lease("take", TTL_MS) and await a.lease("take", TTL_MS), "taken, then kept"
    assert not await b.lease("take", TTL_MS) and not await b.lease("renew", TTL_MS)
    assert not await b.lease("release", TTL_MS), "nobody else releases it"
    assert await a.lease("renew", TTL_MS) and await a.lease("release", TTL_MS)
    assert not await a.lease("renew", TTL_MS), "released: nothing to renew"
    assert await b.lease("take", TTL_MS)
    await backend.elapse(TTL_MS / 1000 + 0.05)
    await wait_for(lambda: a.lease("take", TTL_MS), timeout=5)
    assert not await b.lease("renew", TTL_MS), "b's lease expired and a holds it"


async def test_reads_and_claims_of_an_owned_stream_need_the_lease(backend: Backend):
    a, b = await joined(backend, "a", "b")
    await backend.publish(4)
    assert await a.read_owned(10) is None and await a.claim_owned("-", 10) is None
    assert await a.lease("take", TTL_MS)
    assert rids(await a.read_owned(3) or []) == ["r0", "r1", "r2"]
    assert await b.read_owned(10) is None, "b holds no lease: it reads nothing"
    await backend.elapse(TTL_MS / 1000 + 0.05)
    await wait_for(lambda: b.lease("take", TTL_MS), timeout=5)
    token = await a.token()
    taken = await b.claim_owned("-", 2)
    assert taken is not None and rids(taken) == ["r0", "r1"] and [d.deliveries for d in taken] == [2, 2]
    assert rids(await b.claim_owned(taken[-1].id, 10) or []) == ["r2"], "paged after the last id"
    assert rids(await b.read_owned(10) or []) == ["r3"]
    assert await a.read_owned(10) is None, "a lost the lease: its reads stop"
    late = Transition(taken[0].id, "r0", State.FORWARDED, [Forward("out", b'{"n":0}', "r0", 0)])
    verdict = await a.commit([late], token)
    assert verdict.fenced == [0] and await backend.entries("out") == [], "a's late outcome is fenced off"


async def test_live_consumers_are_those_whose_heartbeat_lives(backend: Backend):
    a, b, c = await joined(backend, "a", "b", "c")
    await a.heartbeat(0.3)
    await c.heartbeat(5)
    assert await b.live_consumers() == ["a", "c"]
    await backend.elapse(0.35)
    await wait_for(lambda: _equal(b.live_consumers(), ["c"]), timeout=5)


async def _equal(value, expected) -> bool:
    return await value == expected
