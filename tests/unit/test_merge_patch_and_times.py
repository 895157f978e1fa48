"""JSON merge patch (RFC 7386 appendix A) and command-line times."""

from __future__ import annotations

import pytest

from streams.errors import StreamsError
from streams.merge_patch import merge_patch
from streams.timeparse import parse_time


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_rfc_7386_examples(target, patch, result) -> None:
    assert merge_patch(target, patch) == result


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", 910.0), ("15m", 100.0), ("0.5h", -800.0), ("1000.5", 1000.5), ("1970-01-01T00:10:00", 600.0),
     ("1970-01-01T01:10:00+01:00", 600.0)],
)
def test_times_are_read_as_iso_unix_seconds_or_ages(text: str, expected: float) -> None:
    assert parse_time(text, now=1000.0) == expected


def test_unreadable_time_says_which_forms_work() -> None:
    with pytest.raises(StreamsError, match="use ISO 8601"):
        parse_time("last tuesday")
