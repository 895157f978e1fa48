"""Task priorities: four levels, each a stream of its own (a lane) for stages that read by priority.

A stage declared with ``priorities=True`` reads its source as four lanes, one
per level: ``critical`` (1), ``high`` (2), ``normal`` (3) and ``low`` (4), the
numbers Bull uses. The normal lane is the source stream itself, so producers
that know nothing of priorities keep working; the others are streams named
``<source>.<level>`` (``ocr.critical``). Every lane is an ordinary stream with
its own consumer group, so reading, claims, fencing, retries and dead letters
are those of any stage; only the start of handlers is ordered across lanes
(streams.engine.gate). A task keeps its level from stage to stage: a forward
into a stream read by priority goes to the lane of the entry's own level,
unless the handler set ``Outgoing.priority`` (docs/controls/priorities.md).
"""

from __future__ import annotations

from enum import IntEnum


class Priority(IntEnum):
    CRITICAL = 1
    HIGH = 2
    NORMAL = 3
    LOW = 4

    @property
    def label(self) -> str:
        return self.name.lower()


LEVELS = tuple(Priority)  # highest first
Level = Priority | str | int


def parse_priority(value: object) -> Priority:
    """A level from its name ("high") or Bull's number (2); ValueError naming the choices otherwise."""
    if isinstance(value, Priority):
        return value
    if type(value) is int and 1 <= value <= 4:
        return Priority(value)
    if isinstance(value, str) and value.islower() and value.upper() in Priority.__members__:
        return Priority[value.upper()]
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
    raise ValueError(f"priority must be one of critical, high, normal, low (or 1-4), got {shown}")


def lane(stream: str, level: Priority) -> str:
    """The logical name of ``stream``'s lane for ``level``: the stream itself for normal."""
    return stream if level is Priority.NORMAL else f"{stream}.{level.label}"


def lane_group(group: str, level: Priority) -> str:
    """The consumer group reading a lane: the stage's own for normal, else suffixed like the lane."""
    return group if level is Priority.NORMAL else f"{group}.{level.label}"


def routed(stream: str, priority: object, prioritized: frozenset[str] | set[str]) -> str:
    """The stream a task of ``priority`` (None: normal) published to ``stream`` goes to.

    ValueError for a bad level, and for a level other than normal on a stream no
    stage reads by priority: its lane would never be read.
    """
    if priority is None:
        return stream
    level = parse_priority(priority)
    if level is Priority.NORMAL:
        return stream
    if stream not in prioritized:
        raise ValueError(f"stream {stream!r} is not read by priority (no stage with priorities=True reads "
                         f"it): a {level.label} task would never be read; publish it without a priority")
    return lane(stream, level)
