"""Every transition Outcomes builds from a delivery, with its exact state and ops."""

from __future__ import annotations

import time

import orjson
import pytest

from streams.codec import encode_payload, envelope
from streams.delivery import Delivery, to_delivery
from streams.engine.outcomes import ENVELOPE_BYTES, Outcomes
from streams.errors import ConfigError, PayloadTooLarge
from streams.message import Message, Outgoing
from streams.stage import Stage
from streams.transition import Append, DeadLetter, Delay, ErrorRecord, Forward, ListPush, State, Transition

SECRET = "sk-live-0123456789abcdef"
LIMIT = 4096
ADDRESS = "mst:{p}:tasks"  # the transport's name of the source


async def noop(message: Message) -> list[Outgoing]:
    return []


def outcomes(sinks: tuple[str, ...] = ("ocr",)) -> Outcomes:
    stage = Stage(name="ocr", source="tasks", processor=noop, sinks=sinks, group="ocr-group")
    return Outcomes(stage, "c-1", ADDRESS, LIMIT, secrets=[SECRET])


def flat(payload: dict[str, object], rid: str = "r1", attempt: int = 1, *extra: str) -> list[bytes]:
    return [f.encode() for f in [*envelope(encode_payload(payload), rid, attempt, 1700), *extra]]


def delivery(payload: dict[str, object] | None = None, attempt: int = 1, deliveries: int = 1,
             extra: tuple[str, ...] = ()) -> Delivery:
    return to_delivery("tasks", "5-0", flat(payload or {"a": 1}, "r1", attempt, *extra), deliveries)


def undecodable() -> Delivery:
    d = to_delivery("tasks", "5-0", [b"rid", b"r9", b"junk", b"\xff\xfe"], 2)
    assert d.message is None
    return d


def parts(t: Transition) -> tuple[str, str, State, list[object]]:
    return t.entry_id, t.request_id, t.state, list(t.ops)


def record_of(op: object) -> dict[str, object]:
    assert isinstance(op, ErrorRecord)
    record: dict[str, object] = orjson.loads(op.data)
    return record


# -- forward -----------------------------------------------------------------


def test_one_output_to_the_one_sink_is_one_forward_with_the_tasks_ids() -> None:
    t = outcomes().forward(delivery(), [Outgoing({"b": 2})])
    assert parts(t) == ("5-0", "r1", State.FORWARDED, [Forward("ocr", b'{"b":2}', "r1", 1700)])


def test_an_output_goes_to_every_sink_of_the_stage() -> None:
    t = outcomes(("ocr", "audit")).forward(delivery(), [Outgoing({"b": 2})])
    assert parts(t) == ("5-0", "r1", State.FORWARDED, [
        Forward("ocr", b'{"b":2}', "r1", 1700), Forward("audit", b'{"b":2}', "r1", 1700)])


def test_several_outputs_are_forwarded_in_order() -> None:
    t = outcomes().forward(delivery(), [Outgoing({"n": 1}), Outgoing({"n": 2})])
    assert list(t.ops) == [Forward("ocr", b'{"n":1}', "r1", 1700), Forward("ocr", b'{"n":2}', "r1", 1700)]


def test_an_output_naming_a_stream_goes_only_there() -> None:
    t = outcomes(("ocr", "audit")).forward(delivery(), [Outgoing({"b": 2}, stream="side")])
    assert parts(t) == ("5-0", "r1", State.FORWARDED, [Forward("side", b'{"b":2}', "r1", 1700)])


def test_an_output_naming_a_list_is_pushed_there_instead_of_forwarded() -> None:
    t = outcomes().forward(delivery(), [Outgoing({"b": 2}, list="legacy:results"), Outgoing({"c": 3})])
    assert parts(t) == ("5-0", "r1", State.FORWARDED, [
        ListPush("legacy:results", b'{"b":2}'), Forward("ocr", b'{"c":3}', "r1", 1700)])


@pytest.mark.parametrize("sinks", [("ocr",), ("ocr", "audit")])
def test_an_outputs_own_request_id_replaces_the_tasks(sinks: tuple[str, ...]) -> None:
    t = outcomes(sinks).forward(delivery(), [Outgoing({"b": 2}, request_id="r2")])
    assert {op.request_id for op in t.ops if isinstance(op, Forward)} == {"r2"}
    assert t.request_id == "r1", "the transition is still the input task's"


@pytest.mark.parametrize("rid", [5, b"r2", "\ud800"])
@pytest.mark.parametrize("sinks", [("ocr",), ("ocr", "audit")])
def test_a_request_id_that_is_not_utf8_text_is_refused(rid: object, sinks: tuple[str, ...]) -> None:
    with pytest.raises(TypeError, match="request_id must be text"):
        outcomes(sinks).forward(delivery(), [Outgoing({"b": 2}, request_id=rid)])  # type: ignore[arg-type]


def test_an_output_naming_a_bad_stream_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="stream"):
        outcomes().forward(delivery(), [Outgoing({"b": 2}, stream="no spaces!")])


@pytest.mark.parametrize("sinks", [("ocr",), ("ocr", "audit")])
def test_an_output_over_the_payload_limit_raises_before_anything_is_built(sinks: tuple[str, ...]) -> None:
    with pytest.raises(PayloadTooLarge) as raised:
        outcomes(sinks).forward(delivery(), [Outgoing({"b": 2}), Outgoing({"x": "y" * LIMIT})])
    assert raised.value.limit == LIMIT


def test_no_outputs_is_done_with_nothing_to_write() -> None:
    assert parts(outcomes().forward(delivery(), [])) == ("5-0", "r1", State.DONE, [])


# -- retry -------------------------------------------------------------------


def test_a_retry_delays_the_entry_with_attempt_plus_one_its_id_and_the_error() -> None:
    before = int(time.time() * 1000)
    t = outcomes().retry(delivery(attempt=2), 2.5, "TimeoutError: slow")
    after = int(time.time() * 1000)

    [op] = t.ops
    assert (t.entry_id, t.request_id, t.state) == ("5-0", "r1", State.RETRYING)
    assert isinstance(op, Delay) and op.stream == "tasks"
    assert before + 2500 <= op.due_ms <= after + 2500
    assert list(op.fields) == ["v", "1", "d", '{"a":1}', "rid", "r1", "att", "3", "t0", "1700",
                               "prev", "5-0", "errs", '["TimeoutError: slow"]']


def test_a_retried_entry_retried_again_replaces_its_fields_in_place() -> None:
    d = delivery(attempt=3, extra=("prev", "1-0", "errs", '["e1","e2"]', "note", "kept"))
    [op] = outcomes().retry(d, 0.0, "e3").ops
    assert isinstance(op, Delay)
    assert list(op.fields) == ["v", "1", "d", '{"a":1}', "rid", "r1", "att", "4", "t0", "1700",
                               "prev", "5-0", "errs", '["e1","e2","e3"]', "note", "kept"]


def test_the_retry_error_history_keeps_the_last_five() -> None:
    old = orjson.dumps([f"e{n}" for n in range(1, 8)]).decode()
    [op] = outcomes().retry(delivery(extra=("errs", old)), 0.0, "e8").ops
    assert isinstance(op, Delay)
    assert orjson.loads(dict(zip(op.fields[::2], op.fields[1::2], strict=True))["errs"]) == [
        "e4", "e5", "e6", "e7", "e8"]


@pytest.mark.parametrize("errs", ["not json", '{"a": 1}', '[1, "kept", null]'])
def test_a_history_that_is_not_a_list_of_texts_keeps_only_its_texts(errs: str) -> None:
    [op] = outcomes().retry(delivery(extra=("errs", errs)), 0.0, "new").ops
    assert isinstance(op, Delay)
    history = orjson.loads(dict(zip(op.fields[::2], op.fields[1::2], strict=True))["errs"])
    assert history == (["kept", "new"] if errs.startswith("[") else ["new"])


def test_the_retry_error_history_is_redacted() -> None:
    [op] = outcomes().retry(delivery(), 0.0, f"failed redis://u:pw@host with {SECRET}").ops
    assert isinstance(op, Delay)
    errs = dict(zip(op.fields[::2], op.fields[1::2], strict=True))["errs"]
    assert orjson.loads(errs) == ["failed redis://u:***@host with ***"]


# -- error and last resort -----------------------------------------------------


def test_an_error_is_one_error_record_naming_stage_entry_and_source() -> None:
    t = outcomes().error(delivery(), f"InvalidPayload: bad key {SECRET}")
    assert (t.entry_id, t.request_id, t.state) == ("5-0", "r1", State.FAILED)
    [op] = t.ops
    assert isinstance(op, ErrorRecord) and (op.request_id, op.origin_ms) == ("r1", 1700)
    record = record_of(op)
    assert {k: v for k, v in record.items() if k != "timestamp"} == {
        "request_id": "r1", "error_message": "InvalidPayload: bad key ***", "stage": "ocr",
        "entry_id": "5-0", "stream": "tasks", "ids": {"request_id": None}, "payload": {"a": 1}}


def test_an_error_record_reports_the_pipelines_id_fields() -> None:
    stage = Stage(name="ocr", source="tasks", processor=noop, sinks=("ocr",))
    out = Outcomes(stage, "c-1", ADDRESS, LIMIT, id_fields=("request_id", "image_id"))
    [op] = out.error(delivery({"request_id": "q1", "image_id": "img-7", "x": 1}), "why").ops
    assert record_of(op)["ids"] == {"request_id": "q1", "image_id": "img-7"}


def test_an_undecodable_entry_gets_an_error_record_of_its_raw_fields() -> None:
    t = outcomes().error(undecodable(), "undecodable")
    assert (t.request_id, t.state) == ("r9", State.FAILED)
    [op] = t.ops
    assert record_of(op)["payload"] == {"raw": {"rid": "r9", "junk": "\ufffd\ufffd"}, "request_id": None}


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() fails too")


@pytest.mark.parametrize(
    ("error", "message"),
    [(ValueError("bad"), "internal error while handling entry 5-0: ValueError: bad"),
     (Unprintable(), "internal error while handling entry 5-0: Unprintable")],
)
def test_last_resort_is_an_error_record_and_never_raises(error: Exception, message: str) -> None:
    for d in (delivery(), undecodable()):
        t = outcomes().last_resort(d, error)
        assert t.state is State.FAILED and t.entry_id == "5-0"
        [op] = t.ops
        assert record_of(op)["error_message"] == message


# -- dead letter ---------------------------------------------------------------


def test_a_dead_letter_copies_the_entry_with_its_provenance_and_writes_an_error_record() -> None:
    before = int(time.time() * 1000)
    d = delivery(attempt=3, deliveries=2)
    t = outcomes().dead_letter(d, f"gave up after 3 attempts: boom {SECRET}", f"RuntimeError: boom {SECRET}x")
    after = int(time.time() * 1000)

    assert (t.entry_id, t.request_id, t.state) == ("5-0", "r1", State.DEAD_LETTERED)
    letter, record = t.ops
    assert isinstance(letter, DeadLetter) and letter.stage == "ocr"
    fields = list(letter.fields)
    assert fields[:10] == d.flat, "the entry's own fields first, as read"
    provenance = dict(zip(fields[10::2], fields[11::2], strict=True))
    dead_at = int(provenance.pop(b"dead_at"))
    assert before <= dead_at <= after
    assert provenance == {
        b"source": ADDRESS.encode(), b"group": b"ocr-group", b"entry_id": b"5-0", b"deliveries": b"2",
        b"attempts": b"3", b"reason": b"gave up after 3 attempts: boom ***",
        b"last_error": b"RuntimeError: boom ***x", b"consumer": b"c-1", b"stage": b"ocr"}
    assert list(provenance) == [b"source", b"group", b"entry_id", b"deliveries", b"attempts",
                                b"reason", b"last_error", b"consumer", b"stage"]
    assert record_of(record)["error_message"] == "gave up after 3 attempts: boom ***"


def test_a_dead_letter_of_an_undecodable_entry_counts_one_attempt_and_keeps_its_bytes() -> None:
    d = undecodable()
    letter = outcomes().dead_letter(d, "crash loop", "crash loop").ops[0]
    assert isinstance(letter, DeadLetter)
    fields = list(letter.fields)
    assert fields[:4] == [b"rid", b"r9", b"junk", b"\xff\xfe"]
    provenance = dict(zip(fields[4::2], fields[5::2], strict=True))
    assert (provenance[b"attempts"], provenance[b"deliveries"]) == (b"1", b"2")


def test_provenance_of_an_earlier_dead_letter_is_replaced_not_repeated() -> None:
    d = delivery(extra=("reason", "old", "consumer", "c-0"))
    letter = outcomes().dead_letter(d, "new", "new").ops[0]
    assert isinstance(letter, DeadLetter)
    fields = list(letter.fields)
    names = fields[::2]
    assert names.count(b"reason") == 1 and names.count(b"consumer") == 1
    assert dict(zip(names, fields[1::2], strict=True))[b"consumer"] == b"c-1"


# -- hand back and oversized ---------------------------------------------------


def test_a_hand_back_appends_the_fields_exactly_as_read() -> None:
    for d in (delivery(attempt=2, extra=("prev", "1-0")), undecodable()):
        t = outcomes().hand_back(d)
        assert parts(t) == ("5-0", d.request_id, State.HANDED_BACK, [Append("tasks", d.flat)])


def test_an_entry_over_the_payload_limit_and_envelope_room_is_oversized() -> None:
    out = outcomes()
    small = delivery({"x": "y" * LIMIT})
    huge = delivery({"x": "y" * (LIMIT + ENVELOPE_BYTES)})
    assert out.oversized(small) == ""
    size = sum(map(len, huge.flat))
    assert out.oversized(huge) == (
        f"the entry is {size} bytes, over the payload limit of {LIMIT} bytes "
        "(MILLSTREAM_MAX_PAYLOAD_BYTES): not retried or dead-lettered")
