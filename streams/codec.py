"""The stream entry envelope: JSON via orjson, never pickle.

An entry's fields are::

    v    envelope version ("1")
    d    the payload, a JSON object (orjson bytes)
    rid  the task's request id, kept across stages, retries and replays
    att  handler attempt number, 1 for a first delivery (retries count up)
    t0   unix ms when the task entered the pipeline (end-to-end latency)
    lg   only on items the list bridge moved from a list (its key): ``d`` is the
         item exactly as pushed, checked by nobody yet (the bridge moves it unread,
         docs/decisions/0017-bridge-moves-items-unread.md), and ``rid`` only a label

Fields other than these are kept as provenance (dead letters add theirs).
The envelope is written by ``envelope`` here and by ``add_envelope`` /
``add_moved`` in the Redis functions (redis/functions/millstream.lua), nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from streams.errors import DecodeError, PayloadTooLarge
from streams.text.lenient import read_ids

VERSION = b"1"
DEFAULT_MAX_BYTES = 1024 * 1024

Fields = dict[bytes, bytes]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def encode_payload(payload: Mapping[str, Any], limit: int = DEFAULT_MAX_BYTES) -> bytes:
    """JSON-encode a payload, refusing one over ``limit`` bytes with a clear error."""
    if type(payload) is not dict and not isinstance(payload, Mapping):  # the ABC check is slow
        raise TypeError(f"payload must be a JSON object (a mapping), got {type(payload).__name__}")
    data = orjson.dumps(payload)
    if len(data) > limit:
        raise PayloadTooLarge(len(data), limit)
    return data


def envelope(data: bytes, request_id: str, attempt: int, origin_ms: int) -> list[str]:
    """The flat field list of an entry (XADD order), from an already encoded payload.

    Text: dead-letter replay sends entries inside a JSON batch, and the publisher
    sends them as arguments that redis-py encodes.
    """
    return ["v", "1", "d", data.decode(), "rid", request_id, "att", str(attempt), "t0", str(origin_ms)]


def decode(fields: Mapping[bytes, bytes]) -> tuple[dict[str, Any], str, int, int]:
    """Return (payload, request_id, attempt, origin_ms) of an entry, or raise DecodeError."""
    version = fields.get(b"v")
    if version != VERSION:
        shown = version if version is None or len(version) <= 40 else version[:40] + b"..."
        raise DecodeError(f"unsupported envelope version {shown!r} (expected {VERSION!r})")
    if b"lg" in fields:
        return _decode_moved(fields)
    try:
        payload = orjson.loads(fields[b"d"])
        request_id = fields[b"rid"].decode()
        attempt = int(fields.get(b"att", b"1"))
        origin_ms = int(fields.get(b"t0", b"0"))
    except KeyError as missing:
        raise DecodeError(f"entry lacks field {missing.args[0]!r}") from None
    except (orjson.JSONDecodeError, UnicodeDecodeError, ValueError) as error:
        raise DecodeError(f"entry is not valid JSON/UTF-8: {error}") from None
    if not isinstance(payload, dict):
        raise DecodeError(f"payload must be a JSON object, got {type(payload).__name__}")
    return payload, request_id, attempt, origin_ms


def _decode_moved(fields: Mapping[bytes, bytes]) -> tuple[dict[str, Any], str, int, int]:
    """``decode`` of an item the list bridge moved unread: it is validated here.

    The request id is the item's own ``request_id`` as written (a string's text,
    a number's literal); the bridge's ``rid`` only when the item has none.
    """
    source = fields[b"lg"].decode(errors="replace")
    try:
        raw = fields[b"d"]
        label, attempt = fields[b"rid"].decode(), int(fields.get(b"att", b"1"))
        origin_ms = int(fields.get(b"t0", b"0"))
    except KeyError as missing:
        raise DecodeError(f"entry lacks field {missing.args[0]!r}") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise DecodeError(f"entry is not a valid envelope: {error}") from None
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise DecodeError(f"malformed task from list {source}: it is not valid JSON/UTF-8 ({error}); "
                          "push one JSON object (UTF-8) per item") from None
    if type(payload) is not dict:
        raise DecodeError(f"malformed task from list {source}: it is JSON but not an object "
                          f"({type(payload).__name__}); push one JSON object (UTF-8) per item")
    rid = payload.get("request_id")
    if type(rid) is not str:
        rid = read_ids(raw.decode(), ("request_id",))["request_id"] if _scalar(rid) else None
    return payload, rid or label, attempt, origin_ms


def _scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list)


def decode_flat(flat: Sequence[bytes]) -> tuple[dict[str, Any], str, int, int]:
    """``decode`` of an entry's flat field list, as Redis replies it.

    An envelope written by millstream has its fields in XADD order; reading
    them by position skips building a dict per entry.
    """
    if len(flat) == 10 and flat[0] == b"v" and flat[2] == b"d" and flat[4] == b"rid" \
            and flat[6] == b"att" and flat[8] == b"t0" and flat[1] == VERSION:
        try:
            payload = orjson.loads(flat[3])
            request_id, attempt, origin_ms = flat[5].decode(), int(flat[7]), int(flat[9])
        except (orjson.JSONDecodeError, UnicodeDecodeError, ValueError) as error:
            raise DecodeError(f"entry is not valid JSON/UTF-8: {error}") from None
        if type(payload) is not dict:
            raise DecodeError(f"payload must be a JSON object, got {type(payload).__name__}")
        return payload, request_id, attempt, origin_ms
    return decode(dict(zip(flat[::2], flat[1::2], strict=False)))


def printable(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    """Raw fields as text, for error records of entries that cannot be decoded."""
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
