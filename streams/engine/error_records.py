"""Error records: what a failed task leaves in the errors stream, built whatever the entry holds.

A record is one JSON object::

    request_id     the entry's request id (for an entry that did not decode, its
                   ``rid`` as text, else ``entry:<id>``)
    error_message  why, redacted (streams.text.redact) and cut to MAX_MESSAGE_CHARS
    timestamp      unix seconds
    stage, entry_id, stream
    ids            the pipeline's id fields (Pipeline.id_fields, by default
                   ``request_id``) as written in the task's own text (a string's
                   characters, a number's literal) or null, even when its JSON
                   does not parse: what a pipeline reports outside (an error list)
    payload        the task as decoded; for an entry that did not decode, or whose
                   payload cannot be encoded again (orjson refuses nesting deeper
                   than 255), ``{"raw": its text, <each id field>}``

A record never exceeds the payload limit: past it, ``raw`` keeps its first
RAW_PREFIX_BYTES and ``raw_bytes`` says how long it was. ``ErrorRecords.build``
never raises: if building the full record fails in any way, it falls back to a
record made of texts only, and the task still gets its one outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from streams.codec import printable
from streams.delivery import Delivery
from streams.pipeline import ID_FIELDS
from streams.text.lenient import MAX_ID_CHARS, read_ids, safe_text
from streams.text.redact import redact
from streams.transition import ErrorRecord

MAX_MESSAGE_CHARS = 4096
RAW_PREFIX_BYTES = 256
_REDACTED_CHARS = 2 * MAX_MESSAGE_CHARS  # what redaction reads of a longer text: its cost grows faster


def clean(text: str, secrets: Iterable[str] = ()) -> str:
    """Text bound for a record or a dead letter: redacted, cut to MAX_MESSAGE_CHARS, encodable.

    Of a text longer than _REDACTED_CHARS, only what precedes the last blank within them
    is redacted and kept: the cost of redaction stays bounded (its patterns are slower
    than linear on long runs of letters), and no cut leaves part of a password, token or
    known secret (none holds a blank) unrecognised. Redacted text is cut afterwards.
    """
    length = len(text)
    if length > _REDACTED_CHARS:
        head = text[:_REDACTED_CHARS]
        text = redact(safe_text(head[:max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"), 0)]), secrets)
    else:
        text = redact(safe_text(text), secrets)
    if len(text) > MAX_MESSAGE_CHARS or length > _REDACTED_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}... ({length} characters in all)"
    return text


def raw_text(d: Delivery) -> str | dict[str, str]:
    """The entry as text: its ``d`` field when it has one, else all its fields."""
    data = d.fields.get(b"d")
    return printable(d.fields) if data is None else data.decode(errors="replace")


def task_ids(d: Delivery, names: Sequence[str] = ID_FIELDS) -> dict[str, str | None]:
    """The task's ids ``names`` as written in its text (see the module doc)."""
    payload = d.message.payload if d.message is not None else None
    if payload is not None:
        ids = {name: payload.get(name) for name in names}
        if all(type(v) is str or v is None or isinstance(v, dict | list) for v in ids.values()):
            return {k: v[:MAX_ID_CHARS] if type(v) is str else None for k, v in ids.items()}
    data = d.fields.get(b"d")
    return read_ids(data.decode(errors="replace"), names) if data is not None else dict.fromkeys(names)


def _prefix(raw: str | dict[str, str]) -> str:
    text = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    return text.encode()[:RAW_PREFIX_BYTES].decode(errors="ignore")


def _size(raw: str | dict[str, str]) -> int:
    return len(raw.encode()) if isinstance(raw, str) else sum(len(k) + len(v) for k, v in raw.items())


class ErrorRecords:
    """Builds the error records of one stage (entries of ``stream`` read by ``stage``).

    ``id_fields``: the pipeline's id fields, reported in ``ids`` (Pipeline.id_fields).
    """

    def __init__(self, stage: str, stream: str, limit: int, secrets: Iterable[str] = (),
                 id_fields: Sequence[str] = ID_FIELDS) -> None:
        self.stage, self.stream, self.limit = stage, stream, limit
        self.secrets, self.id_fields = tuple(secrets), tuple(id_fields)

    def build(self, d: Delivery, reason: str) -> ErrorRecord:
        """The record of ``d`` failing for ``reason``; never raises."""
        try:
            return self._full(d, reason)
        except Exception:  # noqa: BLE001 - the record must be written whatever went wrong
            return self._bare(d, reason)

    def _full(self, d: Delivery, reason: str) -> ErrorRecord:
        ids = task_ids(d, self.id_fields)
        record: dict[str, Any] = {
            "request_id": d.request_id, "error_message": clean(reason, self.secrets),
            "timestamp": int(time.time()), "stage": self.stage, "entry_id": d.id, "stream": self.stream,
            "ids": ids,
        }
        data = None
        if d.message is not None:
            try:
                data = orjson.dumps({**record, "payload": d.message.payload})
            except TypeError:  # nested too deep to encode, or not JSON at all: keep its text
                data = None
        if data is None or len(data) > self.limit:
            raw = raw_text(d)
            data = orjson.dumps({**record, "payload": {"raw": raw, **ids}})
            if len(data) > self.limit:
                bounded = {"raw": _prefix(raw), "raw_bytes": _size(raw), **ids}
                data = orjson.dumps({**record, "payload": bounded})
        origin = d.message.origin_ms if d.message is not None else 0
        return ErrorRecord(data, d.request_id, origin)

    def _bare(self, d: Delivery, reason: str) -> ErrorRecord:
        """A record of texts only, for when the full one could not be built."""
        rid = _or(lambda: safe_text(d.request_id)[:MAX_ID_CHARS], f"entry:{d.id}")
        ids = _or(lambda: task_ids(d, self.id_fields), dict.fromkeys(self.id_fields))
        record = {
            "request_id": rid, "error_message": _or(lambda: clean(reason, self.secrets), "unknown error"),
            "timestamp": int(time.time()), "stage": self.stage, "entry_id": d.id, "stream": self.stream,
            "ids": ids, "payload": {"raw": None, **ids},
        }
        return ErrorRecord(orjson.dumps(record), rid, 0)


def _or(build: Any, default: Any) -> Any:
    try:
        return build()
    except Exception:  # noqa: BLE001 - a fallback's own parts fall back once more
        return default
