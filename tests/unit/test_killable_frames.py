"""Frames between a KillablePool and its workers: whatever is sent comes back, and bytes that
are not a frame are a FrameError, never another exception or a hang."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streams.killable import frames
from streams.killable.frames import FrameError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
headers = st.dictionaries(st.text(), json_values, max_size=6)
blobs = st.lists(st.binary(max_size=512), max_size=5)
numeric_dtypes = st.sampled_from(["|b1", "|u1", "|i1", "<u2", ">i4", "<f4", ">f8", "<c8", "<i8"])
arrays = numeric_dtypes.flatmap(
    lambda dtype: hnp.arrays(np.dtype(dtype), hnp.array_shapes(min_dims=0, max_dims=4, max_side=6)))


@given(headers, blobs)
def test_any_header_and_buffers_round_trip(header: dict[str, Any], buffers: list[bytes]) -> None:
    frame = frames.decode(frames.encode_bytes(header, buffers))
    assert frame.header == header and [bytes(b) for b in frame.buffers] == buffers


@given(st.lists(json_values | st.binary(max_size=256) | arrays, max_size=6))
def test_values_round_trip_json_as_json_bytes_as_bytes_and_arrays_with_dtype_and_shape(values: list[Any]) -> None:
    specs, buffers = frames.pack(values)
    frame = frames.decode(frames.encode_bytes({"args": specs}, buffers))
    back = frames.unpack(frame.header["args"], frame.buffers)
    assert len(back) == len(values)
    for sent, got in zip(values, back, strict=True):
        if isinstance(sent, np.ndarray):
            assert got.dtype == sent.dtype and got.shape == sent.shape
            np.testing.assert_array_equal(got, sent)
        else:
            assert got == sent and type(got) is type(sent)


def test_a_strided_view_travels_as_its_values() -> None:
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    view = image[::2, ::-1, ::-1]  # neither C-contiguous nor positive strides
    specs, buffers = frames.pack([view])
    [back] = frames.unpack(specs, [bytes(b) for b in buffers])
    np.testing.assert_array_equal(back, view)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_a_frame_or_a_frame_error(data: bytes) -> None:
    try:
        frame = frames.decode(data)
    except FrameError:
        return
    assert isinstance(frame.header, dict)


@settings(max_examples=300)
@given(headers, blobs, st.data())
def test_a_frame_cut_short_or_with_a_byte_changed_is_a_frame_error_or_a_frame(
        header: dict[str, Any], buffers: list[bytes], data: st.DataObject) -> None:
    good = frames.encode_bytes(header, buffers)
    cut = good[:data.draw(st.integers(0, len(good) - 1))]
    with pytest.raises(FrameError):
        frames.decode(cut)
    at = data.draw(st.integers(0, len(good) - 1))
    changed = good[:at] + bytes([good[at] ^ data.draw(st.integers(1, 255))]) + good[at + 1:]
    with contextlib.suppress(FrameError):  # a changed byte may still make a frame
        frames.decode(changed)


@settings(max_examples=200)
@given(st.lists(json_values | st.binary(max_size=64), max_size=4), st.data())
def test_malformed_value_specs_are_frame_errors(values: list[Any], data: st.DataObject) -> None:
    specs, buffers = frames.pack(values)
    bad = data.draw(st.sampled_from([
        {"array": 0, "dtype": "|O", "shape": [1]},  # objects: never built from bytes
        {"array": 0, "dtype": "<f3", "shape": [1]},
        {"array": 0, "dtype": "|u1", "shape": [-1]},
        {"array": 0, "dtype": "|u1", "shape": "3"},
        {"array": 0, "dtype": "|u1", "shape": [10**6]},  # more than its buffer holds
        {"bytes": len(buffers)},  # no such buffer
        {"bytes": "0"},
        {"json": 1, "bytes": 0},
        {"pickle": "gASVAAAAAAAAAAA="},
        [1, 2],
    ]))
    with pytest.raises(FrameError):
        frames.unpack([*specs, bad], buffers)
    with pytest.raises(FrameError):
        frames.unpack({"not": "a list"}, buffers)


def test_a_header_that_is_not_a_json_object_is_a_frame_error() -> None:
    prefix = frames.PREFIX.pack(frames.MAGIC, 2, 0)
    with pytest.raises(FrameError, match="not an object"):
        frames.decode(prefix + b"[]")
    with pytest.raises(FrameError, match="not JSON"):
        frames.decode(frames.PREFIX.pack(frames.MAGIC, 2, 0) + b"{x")


def test_lengths_over_the_limit_fail_before_any_of_their_bytes_are_read() -> None:
    claims = frames.PREFIX.pack(frames.MAGIC, 2, 1) + frames.LENGTH.pack(2**62)
    with pytest.raises(FrameError, match="over the limit"):
        frames.read_sync(_reader(claims))  # the reader would fail if asked past what it holds
    with pytest.raises(FrameError, match="over the limits"):
        frames.decode(frames.PREFIX.pack(frames.MAGIC, frames.MAX_HEADER_BYTES + 1, 0))
    with pytest.raises(FrameError, match="over the limits"):
        frames.decode(frames.PREFIX.pack(frames.MAGIC, 2, frames.MAX_BUFFERS + 1))


def test_only_numeric_arrays_are_sent() -> None:
    with pytest.raises(TypeError, match="numeric"):
        frames.pack([np.array(["a", "b"], dtype=object)])


@given(st.lists(st.tuples(headers, blobs), max_size=4))
async def test_the_async_reader_returns_each_frame_then_none_at_the_end(sent: list[tuple[dict[str, Any], list[bytes]]]) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"".join(frames.encode_bytes(h, b) for h, b in sent))
    reader.feed_eof()
    got = []
    while (frame := await frames.read(reader)) is not None:
        got.append((frame.header, [bytes(b) for b in frame.buffers]))
    assert got == sent


async def test_the_async_reader_calls_input_ended_inside_a_frame_a_frame_error() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(frames.encode_bytes({"a": 1}, [b"xyz"])[:-1])
    reader.feed_eof()
    with pytest.raises(FrameError, match="ended inside a frame"):
        await frames.read(reader)


def _reader(data: bytes):  # type: ignore[no-untyped-def]
    at = 0

    def read_exactly(n: int) -> bytes:
        nonlocal at
        assert n <= len(data) - at, f"asked for {n} bytes past the {len(data) - at} it holds"
        at += n
        return data[at - n:at]
    return read_exactly
