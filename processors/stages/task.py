"""The image-translation task of seed 000, validated with errors a producer can act on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from streams.errors import InvalidPayload
from streams.priority import Priority, parse_priority

FIELDS: dict[str, type] = {"request_id": str, "image_url": str, "image_id": str, "is_long": bool}
SHAPE = "{request_id: string, image_url: string, image_id: string, is_long: boolean}"


def _kind(value: Any) -> str:
    return {bool: "boolean", str: "string", int: "number", float: "number", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def problems(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, problem) for every missing or mistyped field; the HTTP ingest's validator."""
    found = []
    for name, kind in FIELDS.items():
        if name not in payload:
            found.append((name, f"missing field '{name}'"))
        elif type(payload[name]) is not kind:
            found.append((name, f"field '{name}' must be a {_kind(kind())}, got {_kind(payload[name])}"))
    return found


@dataclass(frozen=True, slots=True)
class TranslateTask:
    request_id: str
    image_url: str
    image_id: str
    is_long: bool

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TranslateTask:
        """Raise InvalidPayload naming every missing or mistyped field."""
        found = problems(payload)
        if found:
            raise InvalidPayload(f"invalid task: {'; '.join(p for _, p in found)}; a task is {SHAPE}")
        return cls(**{name: payload[name] for name in FIELDS})

    def as_payload(self) -> dict[str, Any]:
        return asdict(self)


def level_of(payload: Mapping[str, Any], arrived: int) -> Priority:
    """The level a task goes on at: as it arrived, or its own ``priority`` field if it arrived at
    normal (a legacy list's task comes through the bridge at normal); a long image at normal goes
    low, so that short images, the seed's common case, are not queued behind the long ones'
    several times longer inpainting (docs/controls/priorities.md).
    """
    level = Priority(arrived)
    if level is Priority.NORMAL and (given := payload.get("priority")) is not None:
        try:
            level = parse_priority(given)
        except ValueError as bad:
            raise InvalidPayload(f"invalid task: field 'priority': {bad}") from None
    if level is Priority.NORMAL and payload.get("is_long") is True:
        return Priority.LOW
    return level
