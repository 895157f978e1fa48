"""ms_commit's argument layout as the packer writes it: runs of plain forwards, 'D' for a detail."""

from __future__ import annotations

import orjson

from streams.redis.commit import _Addresses, _KeyList, _pack_entries, spliceable
from streams.redis.keys import Keys
from streams.transition import (
    MAX_DETAIL_BYTES,
    TRUNCATED,
    Delay,
    Forward,
    State,
    Transition,
    bounded_detail,
    detail_of,
)

KEYS = Keys("ms", "p")


def bulks(body: list[bytes]) -> list[bytes]:
    """The arguments of packed RESP bulk strings."""
    data, out, i = b"".join(body), [], 0
    while i < len(data):
        assert data[i:i + 1] == b"$"
        end = data.index(b"\r\n", i)
        size = int(data[i + 1:end])
        out.append(data[end + 2:end + 2 + size])
        i = end + 4 + size
    return out


def packed(*batch: Transition) -> tuple[list[bytes], int]:
    keys = _KeyList("src", "events", "fences", "counts")
    body, count = _pack_entries(batch, _Addresses(KEYS), keys)
    return bulks(body), count


def forward(entry: str, detail: bytes = b"") -> Transition:
    return Transition(entry, "r" + entry, State.FORWARDED, (Forward("out", b"{}", "r" + entry, 7),), detail)


def test_plain_forwards_to_one_stream_are_packed_as_one_run_of_four_arguments_each():
    args, count = packed(forward("1-0"), forward("2-0"))

    assert args == [b"F", b"5", b"2", b"1-0", b"r1-0", b"{}", b"7", b"2-0", b"r2-0", b"{}", b"7"]
    assert count == len(args)


def test_a_forward_with_a_detail_leaves_the_run_and_is_packed_with_D_and_its_detail_first():
    args, count = packed(forward("1-0"), forward("2-0", b'{"result":{}}'), forward("3-0"))

    assert args == [b"F", b"5", b"1", b"1-0", b"r1-0", b"{}", b"7",
                    b"D", b'{"result":{}}', b"2-0", b"r2-0", b"forwarded", b"1", b"e", b"5", b"{}", b"r2-0", b"7",
                    b"F", b"5", b"1", b"3-0", b"r3-0", b"{}", b"7"]
    assert count == len(args)


def test_an_entry_without_a_detail_outside_a_run_is_packed_as_before():
    t = Transition("1-0", "r1", State.RETRYING, [Delay("in", 9, ["a", "b"])])

    args, count = packed(t)

    assert args == [b"1-0", b"r1", b"retrying", b"1", b"z", b"5", b"9", b'["a","b"]']
    assert count == len(args)


def test_a_detail_is_spaced_where_it_would_hold_the_markers_the_lua_finds_records_by():
    detail = orjson.dumps({"a": 1, "trail": [{"stage": "x"}], "s": ',"trail":[ {"stage":"'})

    text = spliceable(detail)

    assert orjson.loads(text) == orjson.loads(detail)
    assert b',"trail":[' not in text and b'{"stage":"' not in text


def test_a_detail_too_long_or_not_a_json_object_becomes_the_truncated_marker():
    assert bounded_detail(b"[1]") == TRUNCATED
    assert bounded_detail(b"{oops") == TRUNCATED
    assert bounded_detail(b'{"x":"' + b"y" * MAX_DETAIL_BYTES + b'"}') == TRUNCATED
    assert bounded_detail(b'{"x":1}') == b'{"x":1}'
    assert detail_of({"x": "y" * MAX_DETAIL_BYTES}) == TRUNCATED
    assert orjson.loads(TRUNCATED) == {"truncated": True}
