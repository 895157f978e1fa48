"""Transitions: what happens to one source entry, as data.

Handling turns every delivery into one ``Transition``: the task's new ``State``
and the writes it causes (its ops). A transport commits a batch of transitions
atomically, each only while its entry is still the consumer's (fencing), and
acknowledges the entry in the same step (streams.transport). Ops name streams
logically ("ocr", "errors"), as stages do; the transport maps them to its own
names (for Redis, streams.redis.keys) and packs them (streams.redis.commit).

=============  ==========================================================
op             what the commit writes
=============  ==========================================================
Forward        a first-attempt envelope carrying ``data`` on ``stream``
ErrorRecord    an error record (JSON ``data``) on the errors stream
Delay          the entry's fields back on ``stream`` once ``due_ms`` passed
DeadLetter     the entry's fields and provenance in ``stage``'s dead letters
Append         fields as given on ``stream`` (an unstarted entry handed back)
ListPush       ``value`` at the tail of list ``list`` (an exact name)
=============  ==========================================================

A transition may carry a ``detail``: a small JSON object (text, at most
MAX_DETAIL_BYTES) that lands in the task's status record as ``"detail"``: the
error and attempt of a retry, the error of a failure, a result stream's payload
(``detail_of``, ``bounded_detail``). Most transitions carry none (b"").

Plain named tuples: a stage builds one transition per entry, and a tuple is
the cheapest record to build and to unpack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

MAX_DETAIL_BYTES = 4096
TRUNCATED = b'{"truncated":true}'  # the detail of one that was too long or not a JSON object


class State(StrEnum):
    """The states a task's status record and the events stream report."""

    QUEUED = "queued"  # published, or moved from a list by the bridge
    FORWARDED = "forwarded"  # outputs written to the next streams
    DONE = "done"  # handled, nothing to write
    RETRYING = "retrying"  # due again later
    FAILED = "failed"  # an error record written
    DEAD_LETTERED = "dead_lettered"
    HANDED_BACK = "handed_back"  # unstarted at shutdown: appended to its stream again
    REPLAYED = "replayed"  # moved from a dead-letter stream back to a stream
    CANCELLED = "cancelled"  # an operator cancelled it (streams.redis.control): an error record says so


class Forward(NamedTuple):
    stream: str
    data: bytes
    request_id: str
    origin_ms: int


class ErrorRecord(NamedTuple):
    data: bytes
    request_id: str
    origin_ms: int


class Delay(NamedTuple):
    stream: str
    due_ms: int
    fields: Sequence[str]


class DeadLetter(NamedTuple):
    stage: str
    fields: Sequence[bytes]


class Append(NamedTuple):
    stream: str
    fields: Sequence[bytes]


class ListPush(NamedTuple):
    list: str
    value: bytes


Op = Forward | ErrorRecord | Delay | DeadLetter | Append | ListPush


class Transition(NamedTuple):
    entry_id: str
    request_id: str
    state: State
    ops: Sequence[Op]
    detail: bytes = b""  # JSON object text for the status record, or b"": none


def detail_of(fields: Mapping[str, Any]) -> bytes:
    """``fields`` as a detail: JSON text, or TRUNCATED past MAX_DETAIL_BYTES."""
    data = orjson.dumps(fields)
    return data if len(data) <= MAX_DETAIL_BYTES else TRUNCATED


def bounded_detail(raw: bytes) -> bytes:
    """``raw`` as a transport stores it: a JSON object within MAX_DETAIL_BYTES, else TRUNCATED."""
    if len(raw) > MAX_DETAIL_BYTES or raw[:1] != b"{":
        return TRUNCATED
    try:
        return raw if type(orjson.loads(raw)) is dict else TRUNCATED
    except orjson.JSONDecodeError:
        return TRUNCATED


class Verdict(NamedTuple):
    """What a commit did: the consumer's current fence token, and the entries fenced off.

    ``fenced`` holds positions in the batch (0-based) of entries that were no
    longer the consumer's: nothing of theirs was written.
    """

    token: str
    fenced: list[int]
