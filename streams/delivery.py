"""Delivery: one entry as read from Redis, decoded into a Message when possible."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.codec import Fields, decode
from streams.errors import DecodeError
from streams.message import Message


@dataclass(slots=True)
class Delivery:
    """An entry held by this consumer; ``message`` is None when it did not decode."""

    id: str
    fields: Fields
    deliveries: int
    message: Message | None
    problem: DecodeError | None = None

    @property
    def request_id(self) -> str:
        if self.message is not None:
            return self.message.request_id
        rid = self.fields.get(b"rid", b"")
        return rid.decode(errors="replace") or f"entry:{self.id}"


def to_delivery(stream: str, entry_id: bytes | str, fields: Fields, deliveries: int) -> Delivery:
    ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    try:
        payload, rid, attempt, origin = decode(fields)
    except DecodeError as problem:
        return Delivery(ident, fields, deliveries, None, problem)
    message = Message(ident, stream, payload, rid, attempt, deliveries, origin)
    return Delivery(ident, fields, deliveries, message)


def to_deliveries(stream: str, claimed: Sequence[Sequence[object]]) -> list[Delivery]:
    """Deliveries from a claim function's reply: [[id, flat fields, deliveries], ...]."""
    out = []
    for entry_id, flat, count in claimed:
        assert isinstance(flat, list) and isinstance(entry_id, bytes) and isinstance(count, int)
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        out.append(to_delivery(stream, entry_id, fields, count))
    return out
