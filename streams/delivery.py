"""Delivery: one entry as read from Redis, decoded into a Message when possible."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.codec import Fields, decode_flat
from streams.errors import DecodeError
from streams.message import Message


@dataclass(slots=True)
class Delivery:
    """An entry held by this consumer; ``message`` is None when it did not decode.

    ``flat`` is the entry's field list as read ([name, value, ...]).
    """

    id: str
    flat: list[bytes]
    deliveries: int
    message: Message | None
    problem: DecodeError | None = None

    @property
    def fields(self) -> Fields:
        return dict(zip(self.flat[::2], self.flat[1::2], strict=False))

    @property
    def request_id(self) -> str:
        if self.message is not None:
            return self.message.request_id
        rid = self.fields.get(b"rid", b"")
        return rid.decode(errors="replace") or f"entry:{self.id}"


def to_delivery(stream: str, entry_id: bytes | str, flat: list[bytes], deliveries: int) -> Delivery:
    """Never raises: an entry that does not decode, whatever the reason, has ``message`` None."""
    ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    try:
        payload, rid, attempt, origin = decode_flat(flat)
    except DecodeError as problem:
        return Delivery(ident, flat, deliveries, None, problem)
    except Exception as error:  # noqa: BLE001 - whatever the fields hold, the entry gets an outcome
        return Delivery(ident, flat, deliveries, None, DecodeError(f"{type(error).__name__}: {error}"))
    message = Message(ident, stream, payload, rid, attempt, deliveries, origin)
    return Delivery(ident, flat, deliveries, message)


def to_deliveries(stream: str, claimed: Sequence[Sequence[object]]) -> list[Delivery]:
    """Deliveries from a claim function's reply: [[id, flat fields, deliveries], ...]."""
    out = []
    for entry_id, flat, count in claimed:
        assert isinstance(flat, list) and isinstance(entry_id, bytes) and isinstance(count, int)
        out.append(to_delivery(stream, entry_id, flat, count))
    return out
