"""KeyRouter: the router of a keyed stage, sending each entry to its key's partition.

A keyed stage (Stage.key) reads its source through this router, a lane of its
own (``<stage>.route``) that one consumer at a time runs, committing one batch
at a time so that the partitions receive each key's entries in publish order.
The partition is crc32 of the key's text modulo the stage's partitions: stable
across processes and releases (Python's ``hash`` of a str is salted per process).
A key is a string or an integer (its decimal text); anything else fails the task
with an error record naming the field, as a producer can fix it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from streams.errors import InvalidPayload
from streams.message import Message, Outgoing

MAX_KEY_CHARS = 1024


def key_text(payload: object, field: str) -> str:
    """The key of a task, as text; InvalidPayload when the field is missing or not a string or integer."""
    value = payload.get(field) if isinstance(payload, dict) else None
    if type(value) is int:
        return str(value)
    if type(value) is not str or not value or len(value) > MAX_KEY_CHARS:
        shown = "missing" if value is None else f"a {type(value).__name__}" if type(value) is not str else \
            "empty" if not value else f"{len(value)} characters, over {MAX_KEY_CHARS}"
        raise InvalidPayload(f"the stage runs one task per {field!r} at a time: the task's {field!r} must be "
                             f"a non-empty string or an integer, got {shown}")
    return value


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode(errors="surrogatepass")) % partitions


class KeyRouter:
    """A batch handler: each message forwarded, unchanged, to the partition of its key."""

    def __init__(self, field: str, streams: Sequence[str]) -> None:
        self.field, self.streams = field, tuple(streams)

    async def __call__(self, messages: Sequence[Message]) -> list[Sequence[Outgoing] | BaseException]:
        out: list[Sequence[Outgoing] | BaseException] = []
        for message in messages:
            try:
                key = key_text(message.payload, self.field)
            except InvalidPayload as bad:
                out.append(bad)
                continue
            out.append([Outgoing(message.payload, stream=self.streams[partition_of(key, len(self.streams))])])
        return out
