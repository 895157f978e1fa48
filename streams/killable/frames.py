"""Frames: the messages between a KillablePool and its worker processes, never pickled.

A frame is a JSON header (orjson) and zero or more raw buffers::

    b"MSF1" | u32 header length | u32 buffer count | u64 length x count | header | buffers

Values (a call's arguments, its result) travel as specs in the header, each one of
``{"json": value}``, ``{"bytes": i}`` or ``{"array": i, "dtype": "<f4", "shape": [h, w]}``,
the last two naming buffer ``i``: an image crosses the pipe as its raw bytes, and what is
received is only ever data (numbers, strings, bytes; numeric dtypes only), never code.
Anything else in a frame, a length over the reader's limit or a truncated frame, is a
``FrameError``: the reader stops trusting that pipe, it does not crash.

Parsing is one generator (``_parse``) fed by a blocking reader in the worker
(``read_sync``) and by an asyncio stream in the pool (``read``).
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

import orjson

MAGIC = b"MSF1"
PREFIX = struct.Struct("!4sII")
LENGTH = struct.Struct("!Q")
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_BUFFERS = 64
MAX_FRAME_BYTES = 4 * 1024 * 1024 * 1024  # the default limit of what one frame's buffers may claim
MAX_DIMENSIONS = 32
# Numeric dtypes only: an object dtype would make numpy build Python objects from the bytes.
DTYPE = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")

Buffer = bytes | bytearray | memoryview


class FrameError(ValueError):
    """A frame that is not what this protocol sends: bad magic, a limit passed, bad JSON, cut short."""


@dataclass(frozen=True, slots=True)
class Frame:
    header: dict[str, Any]
    buffers: tuple[Buffer, ...] = ()


def encode(header: Mapping[str, Any], buffers: Sequence[Buffer] = ()) -> list[Buffer]:
    """The frame's chunks, in order (buffers are not copied); TypeError if the header is not JSON."""
    if len(buffers) > MAX_BUFFERS:
        raise ValueError(f"a frame carries at most {MAX_BUFFERS} buffers, not {len(buffers)}")
    views = [memoryview(b).cast("B") for b in buffers]
    body = orjson.dumps(header)
    lengths = b"".join(LENGTH.pack(v.nbytes) for v in views)
    return [PREFIX.pack(MAGIC, len(body), len(views)) + lengths + body, *views]


def encode_bytes(header: Mapping[str, Any], buffers: Sequence[Buffer] = ()) -> bytes:
    return b"".join(encode(header, buffers))


def _parse(limit: int) -> Generator[int, Buffer, Frame]:
    """Ask for byte counts (yield n, receive exactly n bytes); return the frame."""
    magic, header_length, count = PREFIX.unpack((yield PREFIX.size))
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r}: not a frame of this protocol")
    if header_length > MAX_HEADER_BYTES or count > MAX_BUFFERS:
        raise FrameError(f"header of {header_length} bytes and {count} buffers: over the limits "
                         f"({MAX_HEADER_BYTES} bytes, {MAX_BUFFERS} buffers)")
    raw = (yield LENGTH.size * count) if count else b""
    lengths = [LENGTH.unpack_from(raw, LENGTH.size * i)[0] for i in range(count)]
    if sum(lengths) > limit:
        raise FrameError(f"buffers of {sum(lengths)} bytes: over the limit of {limit} bytes")
    header = parse_header((yield header_length))
    buffers = []
    for length in lengths:
        buffers.append((yield length) if length else b"")
    return Frame(header, tuple(buffers))


def parse_header(data: Buffer) -> dict[str, Any]:
    try:
        header = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise FrameError(f"header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise FrameError(f"header is a JSON {type(header).__name__}, not an object")
    return header


def decode(data: Buffer, limit: int = MAX_FRAME_BYTES) -> Frame:
    """The one frame ``data`` holds, exactly (FrameError if cut short or followed by more bytes)."""
    view, at = memoryview(data).cast("B"), 0

    def take(n: int) -> Buffer:
        nonlocal at
        at += n
        return view[at - n:at]

    frame = read_sync(take, limit)
    if frame is None or at != view.nbytes:
        raise FrameError("empty input" if frame is None else f"{view.nbytes - at} bytes after the frame")
    return frame


def read_sync(read_exactly: Callable[[int], Buffer], limit: int = MAX_FRAME_BYTES) -> Frame | None:
    """The next frame from a blocking reader that returns fewer bytes only at end of input;
    None at end of input before a frame starts."""
    steps, started = _parse(limit), False
    need = next(steps)
    while True:
        data = read_exactly(need)
        if len(data) < need:
            if not started and not len(data):
                return None
            raise FrameError(f"input ended inside a frame ({len(data)} of {need} bytes)")
        started = True
        try:
            need = steps.send(data)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def read(reader: asyncio.StreamReader, limit: int = MAX_FRAME_BYTES) -> Frame | None:
    """The next frame from ``reader``; None at end of input before a frame starts."""
    steps, started = _parse(limit), False
    need = next(steps)
    while True:
        try:
            data = await reader.readexactly(need)
        except asyncio.IncompleteReadError as short:
            if not started and not short.partial:
                return None
            raise FrameError(f"input ended inside a frame ({len(short.partial)} of {need} bytes)") from None
        started = True
        try:
            need = steps.send(data)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def pack(values: Sequence[Any]) -> tuple[list[dict[str, Any]], list[Buffer]]:
    """Specs for ``values`` and the buffers they name (bytes and numeric numpy arrays go raw)."""
    specs: list[dict[str, Any]] = []
    buffers: list[Buffer] = []
    for value in values:
        if isinstance(value, bytes | bytearray | memoryview):
            specs.append({"bytes": len(buffers)})
            buffers.append(value)
        elif hasattr(value, "__array_interface__") and hasattr(value, "dtype"):
            specs.append(_array_spec(value, len(buffers)))
            buffers.append(_contiguous(value))
        else:
            specs.append({"json": value})
    return specs, buffers


def _array_spec(array: Any, index: int) -> dict[str, Any]:
    dtype = str(array.dtype.str)
    if not DTYPE.fullmatch(dtype):
        raise TypeError(f"only numeric arrays cross to a worker process, not dtype {array.dtype}")
    return {"array": index, "dtype": dtype, "shape": list(array.shape)}


def _contiguous(array: Any) -> Buffer:
    import numpy as np

    contiguous: Any = np.ascontiguousarray(array)
    return memoryview(contiguous).cast("B")


def unpack(specs: Any, buffers: Sequence[Buffer]) -> list[Any]:
    """The values ``specs`` describe; FrameError for anything ``pack`` does not write."""
    if not isinstance(specs, list):
        raise FrameError(f"values are a JSON {type(specs).__name__}, not a list")
    return [unpack_one(spec, buffers) for spec in specs]


def unpack_one(spec: Any, buffers: Sequence[Buffer]) -> Any:
    if not isinstance(spec, dict):
        raise FrameError(f"a value spec is a JSON {type(spec).__name__}, not an object")
    if spec.keys() == {"json"}:
        return spec["json"]
    if spec.keys() == {"bytes"}:
        return bytes(_buffer(spec["bytes"], buffers))
    if spec.keys() == {"array", "dtype", "shape"}:
        return _array(spec, _buffer(spec["array"], buffers))
    raise FrameError(f"unknown value spec with keys {sorted(spec)}")


def _buffer(index: Any, buffers: Sequence[Buffer]) -> Buffer:
    if type(index) is not int or not 0 <= index < len(buffers):
        raise FrameError(f"value names buffer {index!r} of {len(buffers)}")
    return buffers[index]


def _array(spec: dict[str, Any], data: Buffer) -> Any:
    dtype, shape = spec["dtype"], spec["shape"]
    if not isinstance(dtype, str) or not DTYPE.fullmatch(dtype):
        raise FrameError(f"array dtype {dtype!r} is not a numeric dtype")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMENSIONS
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise FrameError(f"array shape {shape!r} is not a list of at most {MAX_DIMENSIONS} sizes")
    import numpy as np

    try:
        kind = np.dtype(dtype)
    except TypeError:
        raise FrameError(f"array dtype {dtype!r} is not a dtype") from None
    if prod(shape) * kind.itemsize != len(memoryview(data).cast("B")):
        raise FrameError(f"array of shape {shape} and dtype {dtype} does not fill its {len(data)} bytes")
    return np.frombuffer(data, dtype=kind).reshape(shape)
