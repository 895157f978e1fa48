"""Status records keep the task's history, the details of its transitions, and counts per state.

Runs on memory and on Redis (conftest.py), as the transport suite does: the
transitions are those the engine builds (Outcomes), committed through the
StageTransport; only the reading of status records and counts is per backend.
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.delivery import Delivery
from streams.engine.outcomes import Outcomes
from streams.message import Outgoing
from streams.redis import tasks
from streams.testing.memory_broker import TRAIL_BYTES
from streams.transition import Append, Forward, State, Transition
from streams.transport import StageTransport
from tests.conformance.conftest import OTHER, STAGE, Backend, MemoryBackend, RedisBackend
from tests.conformance.test_transport import NOW, joined

SECRET = "hunter2-secret"


def outcomes(results: tuple[str, ...] = ()) -> Outcomes:
    return Outcomes(STAGE, "a", "in", 1 << 20, secrets=[SECRET], results=results)


async def counts(backend: Backend) -> dict[str, dict[str, int]]:
    if isinstance(backend, MemoryBackend):
        out: dict[str, dict[str, int]] = {}
        for field, n in backend.broker.counts.items():
            stage, _, state = field.rpartition("/")
            out.setdefault(stage, {})[state] = n
        return out
    assert isinstance(backend, RedisBackend)
    return await tasks.counts(backend.redis, backend.keys)


async def status(backend: Backend, request_id: str) -> dict[str, Any]:
    found = await backend.status(request_id)
    assert found is not None
    return found


def steps(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["stage"], r["state"]) for r in [*record.get("trail", []), record]]


async def read_one(t: StageTransport) -> Delivery:
    [d] = await t.read_new(10, NOW)
    return d


async def commit(t: StageTransport, *batch: Transition) -> None:
    verdict = await t.commit(list(batch), await t.token())
    assert verdict.fenced == []


async def test_a_tasks_record_lists_every_transition_oldest_first_with_the_details_of_retry_and_failure(
    backend: Backend,
):
    [a] = await joined(backend, "a")
    x = backend.transport("x1", OTHER)
    await x.join()
    [entry] = await backend.publish(1)
    seen = await read_one(x)
    await commit(x, Transition(seen.id, seen.request_id, State.FORWARDED, [Forward("out", b"{}", "r0", 0)]))
    d = await read_one(a)
    await commit(a, outcomes().retry(d, 0.0, f"timed out, password {SECRET}"))
    await backend.elapse(60)
    assert await a.promote_due() == 1
    again = await read_one(a)
    await commit(a, outcomes().error(again, "gave up: still broken"))

    record = await status(backend, "r0")

    assert steps(record) == [("publish", "queued"), ("x", "forwarded"), ("s", "retrying"), ("s", "failed")]
    assert [r["entry"] for r in record["trail"]] == [entry, entry, entry]
    assert record["entry"] == again.id
    retried = record["trail"][-1]["detail"]
    assert retried["attempt"] == 1 and SECRET not in retried["error"] and "timed out" in retried["error"]
    assert record["detail"] == {"error": "gave up: still broken"}
    assert all("trail" not in r for r in record["trail"])
    ats = [r["at"] for r in [*record["trail"], record]]
    assert ats == sorted(ats)


async def test_a_forward_to_a_result_stream_keeps_the_result_or_its_size_and_odd_keys_survive(
    backend: Backend,
):
    [a] = await joined(backend, "a")
    await backend.publish(2)
    small, large = await a.read_new(10, NOW)
    odd = {"trail": [1, {"stage": "fake", "state": "x"}], "n": "ü", "list": [{"stage": "y"}]}
    big = {"blob": "b" * 5000}
    make = outcomes(results=("out",))
    await commit(a, make.forward(small, [Outgoing(odd)]), make.forward(large, [Outgoing(big)]))

    assert (await status(backend, "r0"))["detail"] == {"result": odd}
    assert (await status(backend, "r1"))["detail"] == {"result_bytes": len(orjson.dumps(big))}
    assert "detail" not in (await status(backend, "r0"))["trail"][0]

    # the odd keys in a detail do not confuse the next write's reading of the record
    await commit(a, Transition(small.id, "r0", State.HANDED_BACK, [Append("in", small.flat)]))
    record = await status(backend, "r0")
    assert steps(record) == [("publish", "queued"), ("s", "forwarded"), ("s", "handed_back")]
    assert record["trail"][1]["detail"] == {"result": odd}


async def test_a_forward_outside_the_result_streams_carries_no_detail_and_keeps_the_fast_path(
    backend: Backend,
):
    [a] = await joined(backend, "a")
    await backend.publish(1)
    d = await read_one(a)
    t = outcomes().forward(d, [Outgoing({"k": 1})])
    assert t.detail == b""
    await commit(a, t)

    assert "detail" not in await status(backend, "r0")


async def test_counts_add_up_the_committed_transitions_per_stage_and_state(backend: Backend):
    [a] = await joined(backend, "a")
    await backend.publish(5)
    ds = await a.read_new(10, NOW)
    make = outcomes()
    await commit(a, make.forward(ds[0], [Outgoing({})]), make.forward(ds[1], [Outgoing({})]),
                 make.error(ds[2], "bad"))
    await commit(a, make.forward(ds[3], [Outgoing({})]), make.dead_letter(ds[4], "gave up", "boom"))

    assert await counts(backend) == {"publish": {"queued": 5},
                                     "s": {"forwarded": 3, "failed": 1, "dead_lettered": 1}}


async def test_the_trail_keeps_the_newest_records_within_its_bound_dropping_the_oldest(backend: Backend):
    [a] = await joined(backend, "a")
    await backend.publish(1)
    d = await read_one(a)
    rounds = 8
    filler = "f" * 3000
    for n in range(rounds):
        detail = orjson.dumps({"round": n, "filler": filler})
        await commit(a, Transition(d.id, "r0", State.HANDED_BACK, [Append("in", d.flat)], detail))
        d = await read_one(a)

    record = await status(backend, "r0")
    trail = record["trail"]
    text = len(orjson.dumps(trail)) - 2  # the records and their commas, as TRAIL_BYTES counts them
    assert TRAIL_BYTES - 3200 < text <= TRAIL_BYTES
    assert [r["detail"]["round"] for r in trail] == list(range(rounds - 1 - len(trail), rounds - 1))
    assert trail[-1]["state"] == "handed_back" and record["detail"]["round"] == rounds - 1
    assert ("publish", "queued") not in steps(record)
