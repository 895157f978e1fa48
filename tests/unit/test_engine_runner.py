"""StageRunner's own logic over the in-memory transport: bounds, hand-back, crashes, retries, fencing, outages.

Each test runs one real runner (streams.engine.runner) on a MemoryBroker whose
clock moves only when told (idle times, due retries, heartbeats). Upkeep runs
every 10 ms of real time; tests wait on the broker's changes (``Rig.until``),
and handlers block on events the test sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import streams.engine.runner as runner_module
from streams.codec import decode
from streams.errors import RetryableError
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.policy import RetryPolicy
from streams.settings import Settings
from streams.stage import Stage
from streams.testing import ManualClock, MemoryBroker, MemoryPublisher, MemoryTransport
from streams.testing.memory_streams import Group, Stream


class Rig:
    """One StageRunner as consumer ``c-1`` of stage ``copy`` (reading "tasks", writing "out")."""

    def __init__(self, stage: Stage, shutdown_grace: float = 1.0) -> None:
        self.clock = ManualClock()
        self.broker = MemoryBroker(self.clock)
        self.settings = Settings(consumer="c-1", metrics_port=0, heartbeat_ttl=1.0, claim_interval=0.01,
                                 trim_interval=60.0, shutdown_grace=shutdown_grace)
        self.transport = MemoryTransport(self.broker, "p", self.settings)
        self.registry = CollectorRegistry()
        self.runner = runner_module.StageRunner(self.transport, stage, self.settings, Metrics(self.registry))
        self.publisher = MemoryPublisher(self.broker, self.settings)
        self.stage = stage
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Rig:
        self.task = asyncio.create_task(self.runner.run())
        started = asyncio.ensure_future(self.runner.started.wait())
        await asyncio.wait([started, self.task], return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop the runner gracefully and wait for ``run`` to return."""
        assert self.task is not None
        self.runner.stop()
        self.transport.wake()  # end a blocked read at once (a Redis one waits out its block time)
        await asyncio.wait_for(self.task, 2)

    async def publish(self, n: int, first: int = 0) -> list[str]:
        """Tasks {"n": i} with request ids ``r<i>``, for i from ``first``; their entry ids."""
        items = [({"n": i}, f"r{i}") for i in range(first, first + n)]
        return await self.publisher.publish_many("tasks", items)

    async def until(self, check: Callable[[], bool], within: float = 2.0) -> None:
        """Wait until ``check()`` holds, re-checking at each change of the broker (and every 10 ms)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not check():
            if self.task is not None and self.task.done():
                self.task.result()  # the runner stopped: raise what stopped it
                raise AssertionError("the runner stopped before the condition held")
            if loop.time() > deadline:
                raise AssertionError(f"not within {within}s: {check.__doc__ or check}")
            await self.broker.wait_change(0.01)

    # -- what the broker holds ---------------------------------------------------

    def stream(self, name: str) -> Stream:
        return self.broker.stream(name)

    @property
    def group(self) -> Group:
        return self.stream("tasks").group(self.stage.group)

    def payloads(self, name: str) -> list[dict[str, Any]]:
        s = self.stream(name)
        return [decode(dict(zip(s.entries[i][::2], s.entries[i][1::2], strict=True)))[0] for i in s.ids]

    def state(self, request_id: str) -> str | None:
        found = self.broker.status.get(request_id)
        return None if found is None else str(found["state"])

    def count(self, name: str) -> float:
        return self.registry.get_sample_value(f"millstream_{name}", {"pipeline": "p", "stage": "copy"}) or 0.0


def stage(processor: Callable[[Message], Any], **options: Any) -> Stage:
    return Stage("copy", "tasks", processor, sinks=["out"], **options)


async def copy(message: Message) -> Sequence[Outgoing]:
    return [Outgoing({**message.payload, "attempt": message.attempt})]


class Gate:
    """A processor that blocks every message until ``open()``; counts the messages that reached it."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    async def __call__(self, message: Message) -> Sequence[Outgoing]:
        self.started.append(message.request_id)
        await self._open.wait()
        return await copy(message)


async def settle() -> None:
    """Let every ready task run until it waits again: what the runner would do next, it has done."""
    for _ in range(50):
        await asyncio.sleep(0)


# -- the inbox bound ----------------------------------------------------------------


async def test_the_runner_never_holds_more_than_max_in_flight_entries() -> None:
    gate = Gate()
    seen_pending: list[int] = []

    async def watch(message: Message) -> Sequence[Outgoing]:
        seen_pending.append(len(rig.group.pending))  # what the broker holds for the group, as it starts
        return await gate(message)

    rig = Rig(stage(watch, concurrency=2, max_in_flight=3))
    async with rig:
        await rig.publish(10)
        await rig.until(lambda: len(gate.started) == 2)
        await settle()

        assert len(rig.group.pending) == 3, "two in handlers, one queued: and no more read"
        assert rig.runner.inbox.held == 3
        gate.open()
        await rig.until(lambda: len(rig.stream("out")) == 10)

    assert max(seen_pending) <= 3
    assert sorted(p["n"] for p in rig.payloads("out")) == list(range(10))


# -- stopping -------------------------------------------------------------------------


async def test_entries_no_handler_started_are_handed_back_at_once_when_stopping() -> None:
    gate = Gate()
    rig = Rig(stage(gate, concurrency=2, max_in_flight=4))
    async with rig:
        await rig.publish(4)
        await rig.until(lambda: len(gate.started) == 2 and len(rig.group.pending) == 4)
        originals = [rig.stream("tasks").entries[i] for i in rig.stream("tasks").ids]

        rig.runner.stop()
        await rig.until(lambda: len(rig.stream("tasks")) == 6)

        assert rig.count("stage_handed_back_total") == 2, "while the two handlers still run"
        assert [rig.state(f"r{i}") for i in range(4)] == ["queued", "queued", "handed_back", "handed_back"]
        appended = [rig.stream("tasks").entries[i] for i in rig.stream("tasks").ids[4:]]
        assert appended == originals[2:], "appended again with their fields as read"
        gate.open()

    assert [p["n"] for p in rig.payloads("out")] == [0, 1], "the started ones finish within the grace"
    assert rig.group.held_by("c-1") == [], "every entry read was acknowledged"


async def test_a_lone_workers_untouched_rest_of_its_batch_is_handed_back_when_stopping() -> None:
    gate = Gate()
    rig = Rig(stage(gate, concurrency=1, max_in_flight=3))
    async with rig:
        await rig.publish(3)
        await rig.until(lambda: gate.started == ["r0"] and len(rig.group.pending) == 3)
        rig.runner.stop()
        await rig.until(lambda: rig.runner.inbox.closed)
        gate.open()
        await rig.stop()

    assert gate.started == ["r0"], "nothing started once stopping"
    assert rig.count("stage_handed_back_total") == 2
    assert [rig.state(f"r{i}") for i in range(3)] == ["forwarded", "handed_back", "handed_back"]
    assert len(rig.stream("tasks")) == 5 and rig.group.pending == {}


async def test_a_handler_still_running_after_the_grace_period_is_cancelled_and_its_entry_handed_back() -> None:
    gate = Gate()  # never opened
    rig = Rig(stage(gate, timeout=30.0), shutdown_grace=0.05)
    async with rig:
        await rig.publish(1)
        await rig.until(lambda: gate.started == ["r0"])
    # leaving the block stopped the runner: within its grace, not the handler's 30 s timeout

    assert rig.count("stage_handed_back_total") == 1
    assert rig.state("r0") == "handed_back"
    assert len(rig.stream("tasks")) == 2 and rig.stream("out").ids == []
    assert rig.group.pending == {}, "the cancelled attempt's entry was acknowledged with its hand-back"


# -- crash loops ------------------------------------------------------------------------


async def test_an_entry_delivered_past_the_crash_limit_is_dead_lettered_without_reaching_the_processor() -> None:
    gate = Gate()
    gate.open()
    rig = Rig(stage(gate, crash_limit=2))
    await rig.publish(2)
    # Two consumers that die holding entries, before the runner starts: neither ever heartbeats.
    a = rig.transport.for_stage(rig.stage, "a")
    b = rig.transport.for_stage(rig.stage, "b")
    await a.join()
    await b.join()
    assert [d.deliveries for d in await a.read_new(2, 1)] == [1, 1]
    assert [(d.request_id, d.deliveries) for d in await b.claim_dead("a", 1)] == [("r0", 2)]

    async with rig:
        await rig.until(lambda: rig.group.pending == {} and rig.state("r1") == "forwarded")

    assert gate.started == ["r1"], "r1 was delivered twice (the limit), r0 three times"
    claimed = rig.registry.get_sample_value(
        "millstream_stage_claimed_total", {"pipeline": "p", "stage": "copy", "reason": "dead_consumer"})
    assert claimed == 2
    assert rig.state("r0") == "dead_lettered"
    [letter] = [rig.broker.dead_letters["copy"].entries[i] for i in rig.broker.dead_letters["copy"].ids]
    provenance = dict(zip(letter[::2], letter[1::2], strict=True))
    assert (provenance[b"deliveries"], provenance[b"attempts"], provenance[b"consumer"]) == (b"3", b"1", b"c-1")
    assert provenance[b"reason"].startswith(b"crash loop: delivered 3 times")


# -- retries ----------------------------------------------------------------------------------


async def test_a_failed_attempt_is_retried_after_its_backoff_and_then_succeeds() -> None:
    calls: list[int] = []

    async def flaky(message: Message) -> Sequence[Outgoing]:
        calls.append(message.attempt)
        if message.attempt == 1:
            raise RetryableError("upstream busy")
        return await copy(message)

    rig = Rig(stage(flaky, retry=RetryPolicy(base=30.0, factor=1.0, cap=30.0)))
    async with rig:
        await rig.publish(1)
        await rig.until(lambda: rig.state("r0") == "retrying")
        [due] = rig.broker.delayed["tasks"].values()
        await settle()
        assert calls == [1], "not due yet: the broker's clock has not moved"

        rig.clock.advance_to(due / 1000)  # the promote upkeep moves it back, the runner reads it
        await rig.until(lambda: rig.state("r0") == "forwarded")

    assert calls == [1, 2]
    assert rig.payloads("out") == [{"n": 0, "attempt": 2}]
    assert (rig.count("stage_retried_total"), rig.count("stage_processed_total")) == (1, 1)
    assert rig.broker.delayed["tasks"] == {}


# -- fencing ------------------------------------------------------------------------------------


async def test_an_outcome_is_not_written_once_another_consumer_claimed_the_entry_mid_handling() -> None:
    gate = Gate()
    rig = Rig(stage(gate))
    async with rig:
        await rig.publish(1)
        await rig.until(lambda: gate.started == ["r0"])
        peer = rig.transport.for_stage(rig.stage, "peer")
        await peer.join()
        await peer.heartbeat(3600)  # alive: the runner must not claim it back as a dead consumer's
        rig.clock.advance(2.0)  # the entry has been idle for 2 s, in the broker's time
        assert [d.request_id for d in await peer.claim_stale(1000, 10)] == ["r0"]

        gate.open()
        await rig.until(lambda: rig.count("stage_fenced_total") == 1)
        assert rig.runner.inbox.held == 0, "a fenced entry is no longer held"

    assert rig.stream("out").ids == [], "nothing of the fenced outcome was written"
    assert rig.state("r0") == "queued"
    assert [p.consumer for p in rig.group.pending.values()] == ["peer"], "still the peer's to commit"
    assert rig.count("stage_processed_total") == 0


async def test_an_entry_read_under_an_older_fence_token_is_checked_even_when_the_commits_token_is_current(
        ) -> None:
    release = asyncio.Event()
    started: list[str] = []

    async def slow_first(message: Message) -> Sequence[Outgoing]:
        started.append(message.request_id)
        if message.request_id == "r0":
            await release.wait()
        return await copy(message)

    rig = Rig(stage(slow_first, concurrency=2))
    async with rig:
        await rig.publish(1)
        await rig.until(lambda: started == ["r0"])
        peer = rig.transport.for_stage(rig.stage, "peer")
        await peer.join()
        await peer.heartbeat(3600)
        rig.clock.advance(2.0)
        assert [d.request_id for d in await peer.claim_stale(1000, 10)] == ["r0"]
        # r1's commit tells the runner its new token: r0's commit then goes under the current token.
        await rig.publish(1, first=1)
        await rig.until(lambda: rig.state("r1") == "forwarded")

        release.set()
        await rig.until(lambda: rig.count("stage_fenced_total") == 1)

    assert rig.payloads("out") == [{"n": 1, "attempt": 1}], "r0 was not written: the peer holds it"
    assert [p.consumer for p in rig.group.pending.values()] == ["peer"]


# -- outages ------------------------------------------------------------------------------------


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's outage back-offs (1 s after a failed read, 0.1 s and up after a failed commit), a hundredth."""
    monkeypatch.setattr(runner_module, "READ_RETRY", 0.01)
    monkeypatch.setattr(runner_module, "COMMIT_RETRY_FIRST", 0.001)
    monkeypatch.setattr(runner_module, "COMMIT_RETRY_MAX", 0.05)


@pytest.mark.parametrize("applied", [False, True], ids=["failed-before", "reply-lost"])
async def test_failed_reads_and_commits_are_retried_and_every_entry_is_written_once(
        applied: bool, quick_backoff: None) -> None:
    rig = Rig(stage(copy, concurrency=2, batch_size=3, max_in_flight=6))
    async with rig:
        rig.broker.fail_next(2, applied=applied, only="read_new")
        await rig.publish(5)
        await rig.until(lambda: rig.broker.outages_left == 0 and len(rig.stream("out")) == 5)
        rig.broker.fail_next(2, applied=applied, only="commit")
        await rig.publish(5, first=5)
        await rig.until(lambda: rig.broker.outages_left == 0 and rig.group.pending == {}
                        and len(rig.stream("out")) >= 10)

    assert sorted(p["n"] for p in rig.payloads("out")) == list(range(10)), "nothing lost, nothing doubled"
    assert all(rig.state(f"r{i}") == "forwarded" for i in range(10))
    assert rig.stream("errors").ids == []
    assert rig.group.pending == {} and rig.runner.inbox.held == 0


@pytest.mark.xfail(strict=True, reason=(
    "engine bug (#12 report): the retry of a commit whose reply was lost finds its entries no longer "
    "pending (the first try acknowledged them) and the Verdict calls them fenced, so the runner counts "
    "them in stage_fenced, logs them as owned by another consumer, and never counts them processed"))
async def test_a_commit_whose_reply_was_lost_counts_its_entries_processed_not_fenced(quick_backoff: None) -> None:
    rig = Rig(stage(copy))
    async with rig:
        rig.broker.fail_next(1, applied=True, only="commit")
        await rig.publish(3)
        await rig.until(lambda: rig.broker.outages_left == 0 and rig.runner.inbox.held == 0)

    assert len(rig.stream("out")) == 3, "written once"
    assert (rig.count("stage_processed_total"), rig.count("stage_fenced_total")) == (3, 0)
