"""The hot path's own parts, without I/O: positional decoding and the duration histogram."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from streams.codec import decode, decode_flat, encode_payload, envelope
from streams.errors import DecodeError
from streams.metrics import Metrics


def flat(fields: list[str]) -> list[bytes]:
    return [f.encode() for f in fields]


def test_an_envelope_in_write_order_decodes_like_its_dict() -> None:
    fields = flat(envelope(encode_payload({"a": "é"}), "rid-1", 2, 1700000000000))
    expected = ({"a": "é"}, "rid-1", 2, 1700000000000)
    assert decode_flat(fields) == expected == decode(dict(zip(fields[::2], fields[1::2], strict=True)))


def test_fields_in_another_order_or_with_extras_still_decode() -> None:
    fields = flat(["rid", "r", "d", '{"n":1}', "v", "1", "prev", "1-0", "att", "3", "t0", "5"])
    assert decode_flat(fields) == ({"n": 1}, "r", 3, 5)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (["v", "1", "d", "{oops", "rid", "r", "att", "1", "t0", "0"], "not valid JSON"),
        (["v", "1", "d", "[1]", "rid", "r", "att", "1", "t0", "0"], "must be a JSON object"),
        (["v", "1", "d", "{}", "rid", "r", "att", "one", "t0", "0"], "not valid JSON/UTF-8"),
        (["v", "2", "d", "{}", "rid", "r", "att", "1", "t0", "0"], "unsupported envelope version"),
    ],
)
def test_bad_entries_in_write_order_raise_decode_error(fields: list[str], problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_flat(flat(fields))


def test_handler_durations_are_exported_as_a_cumulative_histogram() -> None:
    registry = CollectorRegistry()
    durations = Metrics(registry).for_stage("p", "s").duration
    for seconds in (0.0003, 0.0005, 0.004, 0.2, 100.0):
        durations.observe(seconds)

    text = generate_latest(registry).decode()

    def sample(suffix: str) -> float:
        [line] = [ln for ln in text.splitlines() if ln.startswith(f"millstream_stage_handler_seconds_{suffix}")]
        return float(line.rsplit(" ", 1)[1])

    assert sample('bucket{le="0.0005",pipeline="p",stage="s"}') == 2, "a bucket counts values <= its bound"
    assert sample('bucket{le="0.005",pipeline="p",stage="s"}') == 3
    assert sample('bucket{le="60.0",pipeline="p",stage="s"}') == 4
    assert sample('bucket{le="+Inf",pipeline="p",stage="s"}') == 5
    assert sample('count{pipeline="p",stage="s"}') == 5
    assert sample('sum{pipeline="p",stage="s"}') == pytest.approx(100.2048)
