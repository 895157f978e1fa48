"""The tiny core contract: what a processor receives and what it returns.

Messages and outputs are plain slotted dataclasses, not frozen ones: a frozen
dataclass costs a microsecond more to build, and a stage builds one of each
per entry. Treat a received Message as read-only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Message:
    """One delivered stream entry.

    ``attempt`` counts handler attempts (1 on the first try, retries count up);
    ``deliveries`` counts how often this very entry was delivered, so a value
    above 1 means an earlier consumer died or stalled while holding it.
    ``priority`` is the task's level (streams.priority: 1 critical to 4 low) where
    the stage reads by priority; 3 (normal) elsewhere.
    """

    id: str
    stream: str
    payload: Mapping[str, Any]
    request_id: str
    attempt: int = 1
    deliveries: int = 1
    origin_ms: int = 0
    priority: int = 3


@dataclass(slots=True)
class Outgoing:
    """A result to publish. ``stream`` None means every sink of the stage.

    ``list`` names a Redis list (an exact key, e.g. a legacy queue) to RPUSH
    the payload's JSON onto instead, in the same atomic commit. ``priority``
    ("critical", "high", "normal", "low" or 1-4; streams.priority) sets the
    task's level from here on, where a stage reads by priority; None keeps the
    level of the message it came from.
    """

    payload: Mapping[str, Any]
    stream: str | None = None
    request_id: str | None = None
    list: str | None = None
    priority: str | int | None = None


Handler = Callable[[Message], Awaitable[Sequence[Outgoing]]]
"""A per-message processor: an empty result acknowledges without output."""

BatchHandler = Callable[[Sequence[Message]], Awaitable[Sequence["Sequence[Outgoing] | BaseException"]]]
"""A batch processor: one result (outputs or the exception) per message, in order."""

Middleware = Callable[[Handler], Handler]
