"""The details Outcomes attaches to transitions: errors redacted, attempts, results of result streams."""

from __future__ import annotations

import orjson

from streams.engine.outcomes import DETAIL_CHARS, Outcomes
from streams.message import Outgoing
from streams.stage import Stage
from streams.transition import MAX_DETAIL_BYTES
from tests.unit.test_engine_outcomes import ADDRESS, LIMIT, SECRET, delivery, noop


def outcomes(sinks: tuple[str, ...] = ("ocr",), results: tuple[str, ...] = ()) -> Outcomes:
    stage = Stage(name="ocr", source="tasks", processor=noop, sinks=sinks, group="ocr-group")
    return Outcomes(stage, "c-1", ADDRESS, 16 * LIMIT, secrets=[SECRET], results=results)


def test_a_retry_carries_the_redacted_error_and_the_attempt_that_failed():
    t = outcomes().retry(delivery(attempt=2), 1.0, f"refused with key {SECRET}")

    detail = orjson.loads(t.detail)
    assert detail["attempt"] == 2 and "refused with key" in detail["error"] and SECRET not in detail["error"]


def test_a_failure_and_a_dead_letter_carry_their_redacted_errors():
    failed = orjson.loads(outcomes().error(delivery(), f"bad input {SECRET}").detail)
    dead = orjson.loads(outcomes().dead_letter(delivery(), "gave up after 3 attempts", f"boom {SECRET}").detail)

    assert set(failed) == {"error"} and SECRET not in failed["error"] and "bad input" in failed["error"]
    assert dead == {"error": dead["error"], "reason": "gave up after 3 attempts"}
    assert SECRET not in dead["error"] and "boom" in dead["error"]


def test_a_long_error_is_cut_so_that_the_detail_stays_within_its_bound():
    detail = outcomes().error(delivery(), "word " * 20_000).detail

    assert len(detail) <= MAX_DETAIL_BYTES
    assert len(orjson.loads(detail)["error"]) == DETAIL_CHARS


def test_a_forward_to_a_result_stream_carries_the_result_and_past_the_bound_only_its_size():
    small = outcomes(sinks=("success",), results=("success",)).forward(delivery(), [Outgoing({"ok": 1})])
    large = outcomes(sinks=("success",), results=("success",)).forward(delivery(), [Outgoing({"b": "x" * 5000})])

    assert orjson.loads(small.detail) == {"result": {"ok": 1}}
    assert orjson.loads(large.detail) == {"result_bytes": len(orjson.dumps({"b": "x" * 5000}))}


def test_only_forwards_to_result_streams_carry_a_detail_whichever_path_builds_them():
    to_named = outcomes(results=("success",)).forward(delivery(), [Outgoing({"a": 1}, stream="success"),
                                                                  Outgoing({"b": 2})])
    plain = outcomes(results=("success",)).forward(delivery(), [Outgoing({"a": 1})])
    two_sinks = outcomes(sinks=("ocr", "other")).forward(delivery(), [Outgoing({"a": 1})])

    assert orjson.loads(to_named.detail) == {"result": {"a": 1}}
    assert plain.detail == b"" and two_sinks.detail == b""
