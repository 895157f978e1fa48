"""Handling turns each delivery's outcome into one transition, and never raises but for cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.codec import encode_payload, envelope
from streams.delivery import Delivery, to_delivery
from streams.engine.handling import Handling
from streams.engine.outcomes import ENVELOPE_BYTES, Outcomes
from streams.errors import InvalidPayload, RetryableError
from streams.message import BatchHandler, Handler, Message, Outgoing
from streams.metrics import Metrics
from streams.policy import RetryPolicy
from streams.stage import Stage
from streams.transition import DeadLetter, Delay, ErrorRecord, Forward, State, Transition

LIMIT = 4096
LABELS = {"pipeline": "p", "stage": "ocr"}


class Engine:
    """A Handling with its stage, and the metrics it counts into."""

    def __init__(self, processor: Handler | BatchHandler, **stage: object) -> None:
        options: dict[str, object] = {"max_attempts": 3, "crash_limit": 2, "timeout": 10.0, **stage}
        self.stage = Stage(name="ocr", source="tasks", processor=processor, sinks=("ocr",),
                           **options)  # type: ignore[arg-type]
        self.registry = CollectorRegistry()
        outcomes = Outcomes(self.stage, "c-1", "mst:{p}:tasks", LIMIT)
        self.handling = Handling(self.stage, processor, outcomes, Metrics(self.registry).for_stage("p", "ocr"))

    def count(self, name: str) -> float:
        return self.registry.get_sample_value(f"millstream_{name}", LABELS) or 0.0

    async def one(self, d: Delivery) -> Transition:
        async with self.handling.watchdog.worker() as slot:
            return await self.handling.one(d, slot)

    async def batch(self, ds: Sequence[Delivery]) -> list[Transition]:
        async with self.handling.watchdog.worker() as slot:
            return await self.handling.batch(ds, slot)


def delivery(n: int = 5, attempt: int = 1, deliveries: int = 1, payload: dict[str, object] | None = None,
             ) -> Delivery:
    fields = envelope(encode_payload(payload or {"n": n}), f"r{n}", attempt, 1700)
    return to_delivery("tasks", f"{n}-0", [f.encode() for f in fields], deliveries)


def huge(n: int = 5, attempt: int = 1, deliveries: int = 1) -> Delivery:
    """An entry written around the publisher, too large to copy into a retry or a dead letter."""
    return delivery(n, attempt, deliveries, {"x": "y" * (LIMIT + ENVELOPE_BYTES)})


def message_of(t: Transition) -> str:
    """The error message of a transition's error record."""
    [text] = [orjson.loads(op.data)["error_message"] for op in t.ops if isinstance(op, ErrorRecord)]
    assert isinstance(text, str)
    return text


def errs_of(t: Transition) -> list[str]:
    [op] = t.ops
    assert isinstance(op, Delay)
    history: list[str] = orjson.loads(dict(zip(op.fields[::2], op.fields[1::2], strict=True))["errs"])
    return history


def raising(error: BaseException) -> Handler:
    async def processor(message: Message) -> list[Outgoing]:
        raise error
    return processor


def returning(*outputs: Outgoing) -> Handler:
    async def processor(message: Message) -> list[Outgoing]:
        return list(outputs)
    return processor


# -- screen ------------------------------------------------------------------


def test_an_undecodable_entry_becomes_an_error_record_without_reaching_the_processor() -> None:
    d = to_delivery("tasks", "5-0", [b"rid", b"r5", b"d", b"{}"], 1)
    t = Engine(returning()).handling.screen(d)
    assert t is not None and (t.entry_id, t.state) == ("5-0", State.FAILED)
    assert message_of(t) == "undecodable entry 5-0: unsupported envelope version None (expected b'1')"


def test_an_entry_delivered_up_to_the_crash_limit_reaches_the_processor() -> None:
    assert Engine(returning()).handling.screen(delivery(deliveries=2)) is None


def test_an_entry_delivered_past_the_crash_limit_is_dead_lettered() -> None:
    t = Engine(returning()).handling.screen(delivery(deliveries=3))
    assert t is not None and t.state is State.DEAD_LETTERED
    letter, record = t.ops
    assert isinstance(letter, DeadLetter) and isinstance(record, ErrorRecord)
    reason = ("crash loop: delivered 3 times and every consumer holding it died or stalled "
              "(crash_limit 2)")
    provenance = dict(zip(letter.fields[::2], letter.fields[1::2], strict=True))
    assert provenance[b"reason"] == provenance[b"last_error"] == reason.encode()
    assert message_of(t) == reason


def test_an_oversized_entry_past_the_crash_limit_gets_only_an_error_record() -> None:
    t = Engine(returning()).handling.screen(huge(deliveries=3))
    assert t is not None and t.state is State.FAILED
    assert message_of(t).startswith("crash loop: delivered 3 times")
    assert "over the payload limit of 4096 bytes (MILLSTREAM_MAX_PAYLOAD_BYTES)" in message_of(t)


def test_screening_that_raises_ends_the_entry_with_an_error_record() -> None:
    d = delivery()
    d.deliveries = "many"  # type: ignore[assignment]  # a transport bug: no comparison works
    t = Engine(returning()).handling.screen(d)
    assert t is not None and t.state is State.FAILED
    assert message_of(t).startswith("internal error while handling entry 5-0: TypeError")


# -- conclude and decide ---------------------------------------------------------


async def test_outputs_are_forwarded_and_nothing_counts_as_failed() -> None:
    engine = Engine(returning(Outgoing({"ok": True})))
    t = await engine.one(delivery())
    assert (t.state, list(t.ops)) == (State.FORWARDED, [Forward("ocr", b'{"ok":true}', "r5", 1700)])
    assert engine.count("stage_failed_total") == 0
    assert engine.count("stage_handler_seconds_count") == 1


@pytest.mark.parametrize("result", [None, []])
def test_no_outputs_is_done(result: list[Outgoing] | None) -> None:
    t = Engine(returning()).handling.conclude(delivery(), result)
    assert (t.state, list(t.ops)) == (State.DONE, [])


async def test_a_retryable_failure_is_retried_after_the_policys_delay() -> None:
    engine = Engine(raising(RetryableError("busy")), retry=RetryPolicy(base=4.0, factor=1.0, cap=4.0))
    before = int(time.time() * 1000)
    t = await engine.one(delivery(attempt=2))
    after = int(time.time() * 1000)

    assert t.state is State.RETRYING
    [op] = t.ops
    assert isinstance(op, Delay) and before <= op.due_ms <= after + 4000, "within the policy's ceiling"
    assert dict(zip(op.fields[::2], op.fields[1::2], strict=True))["att"] == "3"
    assert errs_of(t) == ["RetryableError: busy"]
    assert engine.count("stage_failed_total") == 1


async def test_a_retry_under_a_zero_ceiling_is_due_at_once() -> None:
    engine = Engine(raising(RuntimeError("bug")), retry=RetryPolicy(base=0.0, cap=0.0))
    before = int(time.time() * 1000)
    [op] = (await engine.one(delivery())).ops
    assert isinstance(op, Delay) and before <= op.due_ms <= int(time.time() * 1000)


async def test_a_failure_on_the_last_attempt_is_dead_lettered() -> None:
    engine = Engine(raising(RuntimeError("boom")))
    t = await engine.one(delivery(attempt=3))
    assert t.state is State.DEAD_LETTERED
    letter = t.ops[0]
    assert isinstance(letter, DeadLetter)
    provenance = dict(zip(letter.fields[::2], letter.fields[1::2], strict=True))
    assert provenance[b"reason"] == b"gave up after 3 attempts: RuntimeError: boom"
    assert (provenance[b"last_error"], provenance[b"attempts"]) == (b"RuntimeError: boom", b"3")


async def test_attempts_not_deliveries_bound_the_retries() -> None:
    t = await Engine(raising(RuntimeError("boom"))).one(delivery(attempt=1, deliveries=2))
    assert t.state is State.RETRYING, "a second delivery of a first attempt is not a last attempt"


async def test_a_permanent_failure_is_an_error_record_at_once() -> None:
    engine = Engine(raising(InvalidPayload("missing field 'image_url'")))
    t = await engine.one(delivery(attempt=1))
    assert t.state is State.FAILED
    assert message_of(t) == "InvalidPayload: missing field 'image_url'"
    assert engine.count("stage_failed_total") == 1


@pytest.mark.parametrize("attempt", [1, 3])
async def test_a_failing_oversized_entry_is_neither_retried_nor_dead_lettered(attempt: int) -> None:
    t = await Engine(raising(RuntimeError("boom"))).one(huge(attempt=attempt))
    assert t.state is State.FAILED
    assert message_of(t).startswith("RuntimeError: boom; the entry is ")


@pytest.mark.parametrize(
    ("output", "problem"),
    [(Outgoing({"x": "y" * LIMIT}), "output rejected: PayloadTooLarge: payload is "),
     (Outgoing({"x": 1}, request_id=7), "output rejected: TypeError: an output's request_id must be text"),  # type: ignore[arg-type]
     (Outgoing(["not", "a", "mapping"]), "output rejected: TypeError: payload must be a JSON object")],  # type: ignore[arg-type]
)
async def test_an_output_the_sinks_cannot_take_is_an_error_not_a_retry(output: Outgoing, problem: str) -> None:
    engine = Engine(returning(output))
    t = await engine.one(delivery())
    assert t.state is State.FAILED and message_of(t).startswith(problem)
    assert engine.count("stage_failed_total") == 0, "the handler itself succeeded"


async def test_an_output_naming_a_bad_stream_ends_the_entry_with_an_error_record() -> None:
    t = await Engine(returning(Outgoing({"x": 1}, stream="no spaces"))).one(delivery())
    assert t.state is State.FAILED
    assert message_of(t).startswith("internal error while handling entry 5-0: ConfigError: stream:")


# -- batches -------------------------------------------------------------------


def batch_of(*results: Sequence[Outgoing] | BaseException) -> BatchHandler:
    async def processor(messages: Sequence[Message]) -> list[Sequence[Outgoing] | BaseException]:
        return list(results)
    return processor


async def test_each_result_of_a_batch_is_concluded_for_its_own_message() -> None:
    engine = Engine(batch_of([Outgoing({"a": 1})], InvalidPayload("bad"), []), batched=True)
    transitions = await engine.batch([delivery(1), delivery(2), delivery(3)])
    assert [(t.entry_id, t.state) for t in transitions] == [
        ("1-0", State.FORWARDED), ("2-0", State.FAILED), ("3-0", State.DONE)]
    assert engine.count("stage_handler_seconds_count") == 1, "one attempt for the batch"


async def test_a_batch_with_a_result_count_that_does_not_match_fails_every_message() -> None:
    engine = Engine(batch_of([]), batched=True)
    transitions = await engine.batch([delivery(1), delivery(2)])
    assert [t.state for t in transitions] == [State.RETRYING, State.RETRYING]
    assert errs_of(transitions[0]) == ["RuntimeError: batch processor returned 1 results for 2 messages"]
    assert engine.count("stage_failed_total") == 2


async def test_a_batch_processor_that_raises_fails_every_message_by_the_policy() -> None:
    async def processor(messages: Sequence[Message]) -> list[Sequence[Outgoing]]:
        raise InvalidPayload("the whole batch")

    transitions = await Engine(processor, batched=True).batch([delivery(1), delivery(2, attempt=3)])
    assert [t.state for t in transitions] == [State.FAILED, State.FAILED]
    assert message_of(transitions[1]) == "InvalidPayload: the whole batch"


async def test_a_batch_processor_returning_no_sequence_ends_every_message_with_an_error_record() -> None:
    async def processor(messages: Sequence[Message]) -> int:
        return 2

    transitions = await Engine(processor, batched=True).batch([delivery(1), delivery(2)])  # type: ignore[arg-type]
    assert [t.state for t in transitions] == [State.FAILED, State.FAILED]
    assert message_of(transitions[0]).startswith("internal error while handling entry 1-0: TypeError")


# -- timeouts and cancellation ----------------------------------------------------


async def asleep(message: Message | Sequence[Message]) -> list[Outgoing]:
    await asyncio.Event().wait()  # never set: runs past any timeout
    return []


async def with_watchdog(engine: Engine, work: asyncio.Task[object]) -> object:
    checks = asyncio.create_task(engine.handling.watchdog.run())
    try:
        return await asyncio.wait_for(work, 1)
    finally:
        checks.cancel()


async def test_a_handler_running_past_its_timeout_fails_with_processing_timeout_and_is_retried() -> None:
    engine = Engine(asleep, timeout=0.05)
    t = await with_watchdog(engine, asyncio.create_task(engine.one(delivery())))
    assert isinstance(t, Transition) and t.state is State.RETRYING
    assert errs_of(t) == ["ProcessingTimeout: handler exceeded its timeout of 0.05 s"]
    assert engine.count("stage_failed_total") == 1


async def test_a_batch_running_past_its_timeout_retries_every_message() -> None:
    engine = Engine(asleep, timeout=0.05, batched=True)
    transitions = await with_watchdog(engine, asyncio.create_task(engine.batch([delivery(1), delivery(2)])))
    assert isinstance(transitions, list)
    assert [t.state for t in transitions] == [State.RETRYING, State.RETRYING]


async def test_a_timeout_on_the_last_attempt_is_dead_lettered() -> None:
    engine = Engine(asleep, timeout=0.05)
    t = await with_watchdog(engine, asyncio.create_task(engine.one(delivery(attempt=3))))
    assert isinstance(t, Transition) and t.state is State.DEAD_LETTERED


async def test_a_cancellation_that_is_not_a_timeout_propagates() -> None:
    engine = Engine(asleep, timeout=10.0)
    work = asyncio.create_task(engine.one(delivery()))
    await asyncio.sleep(0)
    work.cancel()  # the runner's grace period is over: the entry is handed back, not concluded
    with pytest.raises(asyncio.CancelledError):
        await work
