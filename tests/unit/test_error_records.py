"""Error records are total: ids read from any text, messages redacted and bounded, any payload kept as text."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.legacy import ID_FIELDS as TASK_IDS
from streams.delivery import Delivery, to_delivery
from streams.engine.error_records import MAX_MESSAGE_CHARS, ErrorRecords, clean
from streams.message import Message
from streams.text.lenient import read_ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"request_id": 12345678901234567890, "image_id": "i"}', ("12345678901234567890", "i")),
        ('{"x": NaN, "request_id": "r\x01", "image_id": 0x1F}', ("r\x01", "0x1F")),
        ('{"x": ' + "[" * 5000 + "]" * 5000 + ', "request_id": "deep"}', ("deep", None)),
        ('{"request_id": "a\\"b\\u00e9\\ud83d\\ude00"}', ('a"bé😀', None)),
        ('{"request_id": "\\ud800"}', ("\ufffd", None)),
        ('{"request_id": "first", "request_id": "last"}', ("last", None)),
        ('{"inner": {"request_id": "nested"}, "image_id": null}', (None, None)),
        ('{"request_id": [1], "image_id": {"a": 1}}', (None, None)),
        ('{"request_id": true, "image_id": -1.5e3}', ("true", "-1.5e3")),
        ('{"request_id": "cut off', ("cut off", None)),
        ('{"\\u0072equest_id": "escaped key"}', ("escaped key", None)),
        ("[1, 2]", (None, None)),
        ("", (None, None)),
        ('{"a" "b", "request_id": "after junk"}', (None, None)),
        # Python's str(dict): single quotes, and a '}' inside one of them closes nothing
        ("{'request_id': 'py', 'n': 12345678901234567890}", ("py", None)),
        ('{"": {\'k}\': \'v}r\', "x": [1]}, "request_id": "after repr"}', ("after repr", None)),
        ('{"a": "it\'s", "request_id": "apostrophe in a string"}', ("apostrophe in a string", None)),
    ],
)
def test_ids_are_read_from_the_top_level_of_any_text(text: str, expected: tuple[str | None, str | None]) -> None:
    ids = read_ids(text, TASK_IDS)
    assert (ids["request_id"], ids["image_id"]) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10)


@given(before=st.dictionaries(st.text(max_size=6).filter(lambda k: k != "request_id"), json_values, max_size=3),
       rid=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20))
def test_a_python_repr_of_a_task_still_names_its_request_id(before: dict[str, object], rid: str) -> None:
    """What a producer sends when it writes str(task) for JSON: every such text names its id."""
    assert read_ids(str({**before, "request_id": rid}), TASK_IDS)["request_id"] == rid


def test_reading_ids_of_a_hostile_megabyte_is_bounded() -> None:
    hostile = '{"pad": ' + '["a",' * 200_000 + "1" + "]" * 200_000 + ', "request_id": "r"}'
    started = time.perf_counter()
    assert read_ids(hostile, TASK_IDS)["request_id"] is None, "past the step budget nothing more is read"
    assert time.perf_counter() - started < 2.0


def test_clean_text_is_redacted_bounded_and_encodable() -> None:
    key = "sk-live-0123456789abcdef"
    text = clean(f"redis://u:pw@h Authorization: Bearer X {key} \ud800" + "x" * 800_000, [key])
    assert text.startswith("redis://u:***@h Authorization: ***... ")
    assert text.endswith("... (800065 characters in all)")
    assert len(text) <= MAX_MESSAGE_CHARS + 40
    text.encode()


def test_a_secret_beyond_what_is_redacted_is_dropped_not_kept_in_part() -> None:
    key = "sk-live-0123456789abcdef"
    text = clean("y " * 4090 + key + " tail", [key])
    assert "sk-live" not in text and "0123456789" not in text


def delivery(payload: object, flat: list[bytes] | None = None) -> Delivery:
    flat = flat or [b"v", b"1", b"d", b'{"request_id": "r1"}', b"rid", b"r1"]
    message = Message("1-0", "tasks", payload, "r1")  # type: ignore[arg-type]
    return Delivery("1-0", flat, 1, message)


def test_a_payload_that_cannot_be_encoded_is_kept_as_the_entry_text() -> None:
    record = orjson.loads(ErrorRecords("ocr", "tasks", 4096, id_fields=TASK_IDS).build(delivery({"request_id": "r1", "s": {1}}), "boom").data)
    assert record["payload"] == {"raw": '{"request_id": "r1"}', "request_id": "r1", "image_id": None}
    assert record["error_message"] == "boom" and record["ids"] == {"request_id": "r1", "image_id": None}


def test_a_record_that_cannot_be_built_in_full_falls_back_to_texts() -> None:
    broken = delivery({"s": {1}}, flat=[b"d", 5])  # type: ignore[list-item]  # the entry's text cannot be read
    record = orjson.loads(ErrorRecords("ocr", "tasks", 4096, id_fields=TASK_IDS).build(broken, "why \ud800").data)
    assert record["payload"] == {"raw": None, "request_id": None, "image_id": None}
    assert (record["request_id"], record["error_message"]) == ("r1", "why \ufffd")


def test_an_undecodable_entry_keeps_its_fields_and_the_ids_in_its_text() -> None:
    d = to_delivery("tasks", b"1-0", [b"v", b"1", b"d", b'{"request_id": 9007199254740993, "x": NaN}'], 1)
    record = orjson.loads(ErrorRecords("ocr", "tasks", 4096, id_fields=TASK_IDS).build(d, "bad").data)
    assert record["ids"] == {"request_id": "9007199254740993", "image_id": None}
    assert record["payload"]["raw"] == '{"request_id": 9007199254740993, "x": NaN}', "its d, as text"
    junk = to_delivery("tasks", b"2-0", [b"garbage", b"\xffyes"], 1)
    record = orjson.loads(ErrorRecords("ocr", "tasks", 4096, id_fields=TASK_IDS).build(junk, "bad").data)
    assert record["payload"] == {"raw": {"garbage": "\ufffdyes"}, "request_id": None, "image_id": None}
