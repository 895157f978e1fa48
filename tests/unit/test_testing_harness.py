"""streams.testing.run_pipeline: a multi-stage pipeline runs in-process, without Redis.

The pipeline: ``parse`` reads "tasks" and forwards to "work" (a flaky task
fails once and is retried; a bad one is refused for good; a doomed one fails
until it is dead-lettered), ``finish`` reads "work" and writes "done" and a
list mirror. Retries back off by a minute: the harness moves its clock instead.
The double's own parts follow: injected outages, the dedup window, trim bounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from streams.errors import InvalidPayload, RetryableError
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.policy import RetryPolicy
from streams.settings import Settings
from streams.stage import Stage
from streams.testing import (
    ManualClock,
    MemoryBroker,
    MemoryOutage,
    MemoryPublisher,
    MemoryTransport,
    run_pipeline,
)
from streams.testing.memory_streams import Stream
from streams.transition import DeadLetter, ErrorRecord, State, Transition

MIRROR = "legacy:done"


async def parse(message: Message) -> Sequence[Outgoing]:
    kind = message.payload["kind"]
    if kind == "bad":
        raise InvalidPayload("kind 'bad' is not accepted")
    if kind == "doomed" or (kind == "flaky" and message.attempt == 1):
        raise RetryableError(f"{kind}: upstream unavailable")
    return [Outgoing({**message.payload, "attempt": message.attempt})]


async def finish(message: Message) -> Sequence[Outgoing]:
    return [Outgoing({**message.payload, "done": True}),
            Outgoing({"request_id": message.request_id}, list=MIRROR)]


def run_entries(stream: Stream) -> list[tuple[tuple[int, int], list[bytes]]]:
    return [(i, stream.entries[i]) for i in stream.ids]


def pipeline() -> Pipeline:
    backoff = RetryPolicy(base=60.0, factor=1.0, cap=60.0)
    return Pipeline("harness", [
        Stage("parse", "tasks", parse, sinks=["work"], retry=backoff, max_attempts=2),
        Stage("finish", "work", finish, sinks=["done"]),
    ], id_fields=("kind",))


async def test_a_pipeline_runs_through_the_memory_transport_and_its_outcomes_can_be_asserted():
    started = time.perf_counter()
    async with run_pipeline(pipeline()) as run:
        for rid, kind in [("ok", "plain"), ("fl", "flaky"), ("bad", "bad"), ("dd", "doomed")]:
            await run.publish("tasks", {"kind": kind}, rid)
        await run.drained()

        assert run.stream("done") == [
            {"kind": "plain", "attempt": 1, "done": True},
            {"kind": "flaky", "attempt": 2, "done": True},
        ]
        assert run.list(MIRROR) == [{"request_id": "ok"}, {"request_id": "fl"}]
        states = {rid: (s["stage"], s["state"]) for rid in ("ok", "fl", "bad", "dd")
                  if (s := run.status(rid)) is not None}
        assert states == {"ok": ("finish", "forwarded"), "fl": ("finish", "forwarded"),
                          "bad": ("parse", "failed"), "dd": ("parse", "dead_lettered")}
        errors = run.errors()
        assert [(e["request_id"], e["stage"]) for e in errors] == [("bad", "parse"), ("dd", "parse")]
        assert errors[0]["error_message"] == "InvalidPayload: kind 'bad' is not accepted"
        assert errors[0]["ids"] == {"kind": "bad"}, "the pipeline's id fields"
        [letter] = run.dead_letters("parse")
        assert (letter.request_id, letter.attempts, letter.source) == ("dd", 2, "tasks")
        assert letter.reason == "gave up after 2 attempts: RetryableError: doomed: upstream unavailable"
        assert letter.errors == ["RetryableError: doomed: upstream unavailable"]
        assert run.dead_letters("finish") == []
    assert time.perf_counter() - started < 1.0, "a minute of backoff cost no real time"


async def test_a_republished_request_id_is_deduplicated_and_drained_returns_at_once_when_idle():
    async with run_pipeline(pipeline()) as run:
        first = await run.publish("tasks", {"kind": "plain"}, "same")
        assert await run.publish("tasks", {"kind": "plain"}, "same") == first
        await run.drained()
        await run.drained()
        assert run.stream("done") == [{"kind": "plain", "attempt": 1, "done": True}]
        assert [e["t"] for e in run.events() if e["stage"] == "publish"] == [[["same", "queued", first]]]


async def test_drained_names_what_is_left_when_a_handler_never_finishes():
    release = asyncio.Event()

    async def hang(message: Message) -> Sequence[Outgoing]:
        await release.wait()
        return []

    stuck = Pipeline("stuck", [Stage("hang", "tasks", hang, timeout=30.0)])
    async with run_pipeline(stuck) as run:
        await run.publish("tasks", {"n": 1}, "r1")
        with pytest.raises(AssertionError, match="stage hang: 0 unread, 1 pending"):
            await run.drained(within=0.05)
        release.set()
        await run.drained()
        assert run.status("r1") is not None and run.status("r1")["state"] == "done"


async def test_an_injected_outage_fails_a_call_before_it_applies_or_loses_the_reply_after():
    broker = MemoryBroker(ManualClock())
    transport = MemoryTransport(broker, "outage").for_stage(pipeline().stage("parse"), "a")
    await transport.join()
    await MemoryPublisher(broker).publish_many("tasks", [({"n": 0}, "r0"), ({"n": 1}, "r1")])

    broker.fail_next(1, only="read_new")
    assert await transport.token() == "", "other calls go through"
    with pytest.raises(MemoryOutage):
        await transport.read_new(1, 1)
    assert await transport.claim_lost(set()) == [], "nothing was read"

    broker.fail_next(1, applied=True, only="read_new")
    with pytest.raises(MemoryOutage):
        await transport.read_new(1, 1)
    lost = await transport.claim_lost(set())
    assert [(d.request_id, d.deliveries) for d in lost] == [("r0", 2)], "read, and its reply lost"
    assert issubclass(MemoryOutage, transport.transient)
    assert broker.outages_left == 0


async def test_a_commit_whose_reply_is_lost_is_retried_by_the_runner_and_written_once():
    async with run_pipeline(pipeline()) as run:
        run.broker.fail_next(1, applied=True, only="commit")
        await run.publish("tasks", {"kind": "plain"}, "ok")
        await run.drained()
        assert run.broker.outages_left == 0, "the first commit failed"
    # after the block: every runner has stopped, its commit retried (every entry checked)
    assert run.stream("work") == [{"kind": "plain", "attempt": 1}]
    assert run.stream("done") == [{"kind": "plain", "attempt": 1, "done": True}]
    assert [t for e in run.events() for t in e["t"] if e["stage"] == "parse"] == [
        ["ok", "forwarded", run.entries("tasks")[0][0]]]


async def test_a_request_id_is_published_again_once_the_dedup_window_has_passed():
    clock = ManualClock()
    publisher = MemoryPublisher(MemoryBroker(clock), Settings(consumer="memory", dedup_window=60.0))
    first = await publisher.publish("tasks", {"n": 1}, "r1")
    clock.advance(59.9)
    assert await publisher.publish("tasks", {"n": 1}, "r1") == first

    clock.advance(0.2)

    assert await publisher.publish("tasks", {"n": 1}, "r1") != first


async def test_trim_keeps_the_newest_dead_letters_and_unread_error_records_within_their_bounds():
    broker = MemoryBroker(ManualClock())
    settings = Settings(consumer="memory", dlq_max_len=1, errors_max_len=2)
    transport = MemoryTransport(broker, "bounds", settings).for_stage(pipeline().stage("parse"), "a")
    await transport.join()
    await MemoryPublisher(broker).publish_many("tasks", [({"n": i}, f"r{i}") for i in range(3)])
    read = await transport.read_new(3, 1)
    await transport.commit([
        Transition(d.id, d.request_id, State.DEAD_LETTERED,
                   [DeadLetter("parse", [b"rid", d.request_id.encode()]),
                    ErrorRecord(b'{"n":%d}' % i, d.request_id, 0)])
        for i, d in enumerate(read)], await transport.token())

    await transport.trim()

    assert [f for _, f in run_entries(broker.dead_letters["parse"])] == [[b"rid", b"r2"]]
    assert [f[3] for _, f in run_entries(broker.streams["errors"])] == [b'{"n":1}', b'{"n":2}']
    assert len(broker.streams["tasks"]) == 0, "every entry was acknowledged"
