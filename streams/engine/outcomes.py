"""Outcomes: what each decision writes, as transitions for the committer.

* forward: one envelope per output, into the stage's sinks (or a named stream)
* retry: the entry, attempt + 1, into the source's delayed set, due later
* error: an error record (streams.engine.error_records: built whatever the entry holds)
* dead letter: the entry with its provenance in the stage's DLQ, and an error
  record so the task is never silently lost (docs/decisions/dead-letters-also-error.md)
* hand back: an unstarted entry re-appended to its own stream at shutdown
* cancelled: a task an operator cancelled (streams.transport.Cancel) ends with an
  error record "cancelled by <by>: <reason>", so whoever waits for the task's
  outcome (an error list, a webhook) gets exactly one
* last resort: the error record of an entry whose handling raised where nothing
  should (a bug, or an input no step foresaw), so the runner goes on

Texts that leave the process (error messages, the DLQ's reason and last_error,
the retry history ``errs``, the details) are redacted with the stage's known ``secrets``.

Details (streams.transition): a retry carries ``{"error", "attempt"}``, a failure
``{"error"}`` (a cancel too), a dead letter ``{"error", "reason"}`` (its last error and why it was
dead-lettered), and a forward to one of the pipeline's result streams (Pipeline.results)
``{"result": payload}``, or ``{"result_bytes": n}`` past MAX_DETAIL_BYTES.
Only ``forward`` is on the hot path; the others build records and are not.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

import orjson

from streams.codec import Fields, encode_payload
from streams.delivery import Delivery
from streams.engine.error_records import MAX_MESSAGE_CHARS, ErrorRecords, clean
from streams.message import Outgoing
from streams.names import checked
from streams.pipeline import ID_FIELDS
from streams.policy import describe
from streams.priority import Priority, lane, parse_priority
from streams.stage import Stage
from streams.transition import (
    MAX_DETAIL_BYTES,
    Append,
    DeadLetter,
    Delay,
    Forward,
    ListPush,
    Op,
    State,
    Transition,
    detail_of,
)
from streams.transport import Cancel

FORWARDED = State.FORWARDED  # the hot path's state, looked up once
ERROR_HISTORY = 5
MAX_CACHED_NAMES = 1024  # output stream names remembered as checked
ENVELOPE_BYTES = 64 * 1024  # room for an envelope's own fields and provenance beyond the payload
DETAIL_CHARS = 800  # of an error text in a detail: two of them fit MAX_DETAIL_BYTES


def result_detail(data: bytes) -> bytes:
    """The detail of a forward to a result stream: the payload (JSON ``data``) if small, else its size."""
    if len(data) + 11 <= MAX_DETAIL_BYTES:
        return b'{"result":%b}' % data
    return b'{"result_bytes":%d}' % len(data)


def _text(fields: Fields, **replace: str) -> list[str]:
    """An entry's fields as text (junk bytes replaced), with some replaced or added: for JSON."""
    merged = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
    merged.update(replace)
    return [part for pair in merged.items() for part in pair]


def _history(errs: bytes | None) -> list[str]:
    """The retry error history kept in field ``errs`` (a JSON list of texts); [] if it is not one."""
    try:
        old = orjson.loads(errs) if errs else []
    except orjson.JSONDecodeError:
        return []
    return [e[:MAX_MESSAGE_CHARS] for e in old if type(e) is str] if type(old) is list else []


def _request_id(rid: object) -> str:
    """A processor's own request id for an output, checked: it travels as an argument to Redis."""
    if type(rid) is not str or not (rid.isascii() or rid == rid.encode(errors="replace").decode()):
        raise TypeError(f"an output's request_id must be text (UTF-8), got {type(rid).__name__}")
    return rid


def _flat(fields: Fields, **add: str) -> list[bytes]:
    """An entry's fields exactly as read, with some replaced or added."""
    merged = {**fields, **{k.encode(): v.encode() for k, v in add.items()}}
    return [part for pair in merged.items() for part in pair]


class Outcomes:
    """The transitions of one stage's entries.

    ``source`` is the transport's name of the stage's source (streams.transport:
    ``address``): dead letters and error records name where their entry was read;
    error records report the pipeline's ``id_fields`` (Pipeline.id_fields). Forwards
    to ``results`` (Pipeline.results) carry the result in their detail.
    """

    def __init__(self, stage: Stage, consumer: str, source: str, max_payload_bytes: int,
                 secrets: Sequence[str] = (), id_fields: Sequence[str] = ID_FIELDS,
                 results: Sequence[str] = (), prioritized: Collection[str] = ()) -> None:
        self.stage, self.consumer, self.source = stage, consumer, source
        self._prioritized = frozenset(prioritized)
        self._level = stage.level or Priority.NORMAL
        self.max_payload_bytes, self.secrets = max_payload_bytes, tuple(secrets)
        self._sinks = tuple(self._lane(checked("stream", name), self._level) for name in stage.sinks)
        self._results = frozenset(results)
        self._to_result = len(self._sinks) == 1 and stage.sinks[0] in self._results
        self._named: set[str] = set()  # stream names of outputs, checked once
        self.records = ErrorRecords(stage.name, stage.source, max_payload_bytes, secrets, id_fields)

    def forward(self, d: Delivery, outputs: Sequence[Outgoing]) -> Transition:
        """Raises PayloadTooLarge before anything is written when an output is too big."""
        message = d.message
        assert message is not None
        if len(outputs) == 1 and len(self._sinks) == 1:  # the common case, in short
            out = outputs[0]
            if out.stream is None and out.list is None and out.priority is None:
                data = encode_payload(out.payload, self.max_payload_bytes)
                rid = _request_id(out.request_id) if out.request_id else message.request_id
                forward = Forward(self._sinks[0], data, rid, message.origin_ms)
                if self._to_result:
                    return Transition(d.id, message.request_id, FORWARDED, (forward,), result_detail(data))
                return Transition(d.id, message.request_id, FORWARDED, (forward,))
        ops: list[Op] = []
        detail = b""
        for out in outputs:
            data = encode_payload(out.payload, self.max_payload_bytes)
            if out.list is not None:
                ops.append(ListPush(out.list, data))
                continue
            rid = _request_id(out.request_id) if out.request_id else message.request_id
            origin = message.origin_ms
            names = self.stage.sinks if out.stream is None else (self._stream(out.stream),)
            level = self._level if out.priority is None else parse_priority(out.priority)
            targets = [self._lane(name, level) for name in names]
            ops += [Forward(name, data, rid, origin) for name in targets]
            if not detail and self._results.intersection(names):
                detail = result_detail(data)
        state = FORWARDED if ops else State.DONE
        return Transition(d.id, d.request_id, state, ops, detail)

    def _lane(self, stream: str, level: Priority) -> str:
        """Where a forward to ``stream`` goes: the lane of ``level`` if a stage reads it by priority."""
        return lane(stream, level) if stream in self._prioritized else stream

    def _stream(self, name: str) -> str:
        """An output's stream name, checked (a bad one raises ConfigError before anything is written)."""
        if name not in self._named:
            checked("stream", name)
            if len(self._named) < MAX_CACHED_NAMES:  # names a processor takes from its input must not grow it
                self._named.add(name)
        return name

    def oversized(self, d: Delivery) -> str:
        """Why ``d`` is too large to copy into a retry or a dead letter, or "" when it is not.

        Only entries written around the publisher can be (XADD by hand): copying one
        of 100 MB would hold Redis for a tenth of a second, once per retry.
        """
        size = sum(map(len, d.flat))
        if size <= self.max_payload_bytes + ENVELOPE_BYTES:
            return ""
        return (f"the entry is {size} bytes, over the payload limit of {self.max_payload_bytes} bytes "
                "(MILLSTREAM_MAX_PAYLOAD_BYTES): not retried or dead-lettered")

    def retry(self, d: Delivery, delay: float, reason: str) -> Transition:
        assert d.message is not None
        history = [*_history(d.fields.get(b"errs"))[-(ERROR_HISTORY - 1):], clean(reason, self.secrets)]
        errs = orjson.dumps(history).decode()
        fields = _text(d.fields, att=str(d.message.attempt + 1), prev=d.id, errs=errs)
        due = int((time.time() + delay) * 1000)
        detail = detail_of({"error": history[-1][:DETAIL_CHARS], "attempt": d.message.attempt})
        return Transition(d.id, d.request_id, State.RETRYING, [Delay(self.stage.source, due, fields)], detail)

    def _error_detail(self, reason: str) -> bytes:
        return detail_of({"error": clean(reason, self.secrets)[:DETAIL_CHARS]})

    def error(self, d: Delivery, reason: str) -> Transition:
        return Transition(d.id, d.request_id, State.FAILED, [self.records.build(d, reason)],
                          self._error_detail(reason))

    def last_resort(self, d: Delivery, error: BaseException) -> Transition:
        """The error record of an entry whose handling raised ``error``; never raises."""
        try:
            reason = f"internal error while handling entry {d.id}: {describe(error)}"
        except Exception:  # noqa: BLE001 - an exception whose str() raises still ends the task
            reason = f"internal error while handling entry {d.id}: {type(error).__name__}"
        try:
            detail = self._error_detail(reason)
        except Exception:  # noqa: BLE001 - the task still ends, without its detail
            detail = b""
        return Transition(d.id, d.request_id, State.FAILED, [self.records.build(d, reason)], detail)

    def dead_letter(self, d: Delivery, reason: str, last_error: str) -> Transition:
        provenance = {
            "source": self.source, "group": self.stage.group, "entry_id": d.id,
            "deliveries": str(d.deliveries),
            "attempts": str(d.message.attempt if d.message else 1),
            "reason": clean(reason, self.secrets), "last_error": clean(last_error, self.secrets),
            "consumer": self.consumer, "stage": self.stage.name,
            "dead_at": str(int(time.time() * 1000)),
        }
        fields = _flat(d.fields, **provenance)
        ops: list[Op] = [DeadLetter(self.stage.name, fields), self.records.build(d, reason)]
        detail = detail_of({"error": provenance["last_error"][:DETAIL_CHARS],
                            "reason": provenance["reason"][:DETAIL_CHARS]})
        return Transition(d.id, d.request_id, State.DEAD_LETTERED, ops, detail)

    def cancelled(self, d: Delivery, cancel: Cancel) -> Transition:
        """The end of a task an operator cancelled, whether its handler ran or not: never retried."""
        reason = f"cancelled by {cancel.by}: {cancel.reason or 'no reason given'}"
        return Transition(d.id, d.request_id, State.CANCELLED, [self.records.build(d, reason)],
                          self._error_detail(reason))

    def hand_back(self, d: Delivery) -> Transition:
        return Transition(d.id, d.request_id, State.HANDED_BACK, [Append(self.stage.source, _flat(d.fields))])
