"""Outcomes: what each decision writes, as transitions for the committer.

* forward: one envelope per output, into the stage's sinks (or a named stream)
* retry: the entry, attempt + 1, into the source's delayed set, due later
* error: an error record (request_id, error_message, timestamp, stage, entry id)
* dead letter: the entry with its provenance in the stage's DLQ, and an error
  record so the task is never silently lost (docs/decisions/dead-letters-also-error.md)
* hand back: an unstarted entry re-appended to its own stream at shutdown
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from streams.codec import Fields, encode_payload, printable
from streams.delivery import Delivery
from streams.keys import Keys
from streams.message import Outgoing
from streams.redis.transitions import Envelope, Op, Rpush, Transition, Xadd, Zadd
from streams.stage import Stage

ERROR_HISTORY = 5


def _text(fields: Fields, **replace: str) -> list[str]:
    """An entry's fields as text (junk bytes replaced), with some replaced or added: for JSON."""
    merged = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
    merged.update(replace)
    return [part for pair in merged.items() for part in pair]


def _flat(fields: Fields, **add: str) -> list[bytes]:
    """An entry's fields exactly as read, with some replaced or added."""
    merged = {**fields, **{k.encode(): v.encode() for k, v in add.items()}}
    return [part for pair in merged.items() for part in pair]


class Outcomes:
    def __init__(self, keys: Keys, stage: Stage, consumer: str, max_payload_bytes: int) -> None:
        self.keys, self.stage, self.consumer = keys, stage, consumer
        self.max_payload_bytes = max_payload_bytes
        self.source = keys.stream(stage.source)
        self._sinks = tuple(keys.stream(name) for name in stage.sinks)

    def forward(self, d: Delivery, outputs: Sequence[Outgoing]) -> Transition:
        """Raises PayloadTooLarge before anything is written when an output is too big."""
        message = d.message
        assert message is not None
        if len(outputs) == 1 and len(self._sinks) == 1:  # the common case, in short
            out = outputs[0]
            if out.stream is None and out.list is None:
                data = encode_payload(out.payload, self.max_payload_bytes)
                rid = out.request_id or message.request_id
                envelope = Envelope(self._sinks[0], data, rid, message.origin_ms)
                return Transition(d.id, message.request_id, "forwarded", (envelope,))
        ops: list[Op] = []
        for out in outputs:
            data = encode_payload(out.payload, self.max_payload_bytes)
            if out.list is not None:
                ops.append(Rpush(out.list, data))
                continue
            rid, origin = out.request_id or message.request_id, message.origin_ms
            targets = self._sinks if out.stream is None else (self.keys.stream(out.stream),)
            ops += [Envelope(key, data, rid, origin) for key in targets]
        state = "forwarded" if ops else "done"
        return Transition(d.id, d.request_id, state, ops)

    def retry(self, d: Delivery, delay: float, reason: str) -> Transition:
        assert d.message is not None
        history = [*orjson.loads(d.fields.get(b"errs", b"[]"))[-(ERROR_HISTORY - 1):], reason]
        errs = orjson.dumps(history).decode()
        fields = _text(d.fields, att=str(d.message.attempt + 1), prev=d.id, errs=errs)
        member = orjson.dumps(fields).decode()
        due = int((time.time() + delay) * 1000)
        delayed = Zadd(self.keys.delayed(self.stage.source), due, member)
        return Transition(d.id, d.request_id, "retrying", [delayed])

    def _error_record(self, d: Delivery, reason: str) -> Envelope:
        payload: Any = d.message.payload if d.message is not None else {"raw": printable(d.fields)}
        record = {
            "request_id": d.request_id, "error_message": reason, "timestamp": int(time.time()),
            "stage": self.stage.name, "entry_id": d.id, "stream": self.stage.source, "payload": payload,
        }
        origin = d.message.origin_ms if d.message is not None else 0
        return Envelope(self.keys.errors, orjson.dumps(record), d.request_id, origin)

    def error(self, d: Delivery, reason: str) -> Transition:
        return Transition(d.id, d.request_id, "failed", [self._error_record(d, reason)])

    def dead_letter(self, d: Delivery, reason: str, last_error: str) -> Transition:
        provenance = {
            "source": self.source, "group": self.stage.group, "entry_id": d.id,
            "deliveries": str(d.deliveries),
            "attempts": str(d.message.attempt if d.message else 1), "reason": reason,
            "last_error": last_error, "consumer": self.consumer, "stage": self.stage.name,
            "dead_at": str(int(time.time() * 1000)),
        }
        fields = _flat(d.fields, **provenance)
        ops: list[Op] = [Xadd(self.keys.dlq(self.stage.name), fields), self._error_record(d, reason)]
        return Transition(d.id, d.request_id, "dead_lettered", ops)

    def hand_back(self, d: Delivery) -> Transition:
        return Transition(d.id, d.request_id, "handed_back", [Xadd(self.source, _flat(d.fields))])
