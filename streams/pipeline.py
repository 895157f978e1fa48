"""Pipeline: a named list of stages plus middleware, in one documented order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from streams.bridge import ListIngress
from streams.message import Handler, Middleware
from streams.names import checked
from streams.stage import Stage

ID_FIELDS = ("request_id",)  # a pipeline's id fields unless it declares its own
# What a producer's task must look like: (field, problem) pairs, none when it is fine.
Validator = Callable[[Mapping[str, Any]], Sequence[tuple[str, str]]]


def refuse_batched_middleware(stage: Stage, middleware: Sequence[Middleware]) -> None:
    """Middleware wraps the handler of one message; a batched stage has none to wrap, so it refuses."""
    if middleware and stage.batched:
        raise ValueError(
            f"stage {stage.name!r} is batched, and middleware wraps the handler of one message: "
            "it would not run for its batches. Run this stage in a pipeline without middleware, "
            "or do the middleware's work inside the batch processor")


def chain(handler: Handler, middleware: Sequence[Middleware]) -> Handler:
    """Wrap ``handler`` so that the first middleware listed runs outermost."""
    for wrap in reversed(middleware):
        handler = wrap(handler)
    return handler


@dataclass(frozen=True, slots=True)
class Pipeline:
    """``name`` is the hash tag of every key of the pipeline (see streams.redis.keys).

    ``on_stop`` closes what the factory opened (HTTP sessions, thread pools):
    the worker awaits each after its stages have stopped. ``registry`` holds the
    processors' own metrics; the worker serves it with its own.

    ``id_fields`` name the payload fields that identify a task to the outside:
    error records report them in ``ids`` as written in the task's own text,
    and a bridge refusing a list item reports those found in it (streams.bridge).
    ``entry`` is the stream producers publish to (default: the first stage's
    source); ``validators`` check a producer's task per stream before the HTTP
    ingest accepts it (stages still check what they read: lists bypass the API).
    ``lists`` are the Redis lists outside the keyspace that its stages push to
    (``Outgoing.list``); with its bridges' lists they are ``list_keys``, which
    ``Keys`` keeps out of the namespace.

    ``results`` name the streams whose entries are a task's outcome: a forward to
    one of them keeps its payload in the task's status record (its detail).
    """

    name: str
    stages: Sequence[Stage]
    middleware: Sequence[Middleware] = field(default_factory=tuple)
    bridges: Sequence[ListIngress] = field(default_factory=tuple)
    on_stop: Sequence[Callable[[], Awaitable[object]]] = field(default_factory=tuple)
    registry: CollectorRegistry | None = None
    id_fields: Sequence[str] = ID_FIELDS
    lists: Sequence[str] = ()
    results: Sequence[str] = ()
    entry: str = ""
    validators: Mapping[str, Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id_fields", tuple(checked("id field", f) for f in self.id_fields))
        if not self.entry and self.stages:
            object.__setattr__(self, "entry", self.stages[0].source)
        for stage in self.stages:
            refuse_batched_middleware(stage, self.middleware)
        names = [stage.name for stage in self.stages] + [bridge.name for bridge in self.bridges]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline {self.name!r}: stage names must be unique, got {names}")
        self._check_lanes()

    def _check_lanes(self) -> None:
        """Every stage reading a stream read by priority reads it so; no other stream has a lane's name."""
        for stage in self.stages:
            if stage.source in self.prioritized and not stage.priorities:
                raise ValueError(
                    f"pipeline {self.name!r}: stage {stage.name!r} reads stream {stage.source!r} without "
                    "priorities, and another stage reads it by priority: tasks of other levels go to lanes "
                    f"{stage.name!r} would never read; give it priorities=True too")
        named = {s.source for s in self.stages} | {n for s in self.stages for n in s.sinks}
        lanes = {lane.source for s in self.stages for lane in s.lanes if lane.source != s.source}
        if taken := lanes & named:
            raise ValueError(f"pipeline {self.name!r}: streams {sorted(taken)} have names of lanes "
                             "(a priority level's or a keyed stage's partition)")

    @property
    def prioritized(self) -> frozenset[str]:
        """The streams its stages read by priority (Stage.priorities): forwards into them go to lanes."""
        return frozenset(s.source for s in self.stages if s.priorities)

    @property
    def list_keys(self) -> tuple[str, ...]:
        """Every Redis list the pipeline reads or writes: its bridges' and ``lists``."""
        return tuple(dict.fromkeys([*(b.list_key for b in self.bridges), *self.lists]))

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams its stages read, entry first: where a producer may publish."""
        return tuple(dict.fromkeys([*([self.entry] if self.entry else []), *(s.source for s in self.stages)]))

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        known = ", ".join(s.name for s in self.stages)
        raise KeyError(f"pipeline {self.name!r} has no stage {name!r} (stages: {known})")

    def parts(self, names: Sequence[str]) -> tuple[list[Stage], list[ListIngress]]:
        """The stages and bridges called ``names`` (all of them when empty)."""
        if not names:
            return list(self.stages), list(self.bridges)
        known = {s.name: s for s in self.stages} | {b.name: b for b in self.bridges}
        missing = [n for n in names if n not in known]
        if missing:
            raise KeyError(f"pipeline {self.name!r} has no stage or bridge {missing}; known: {sorted(known)}")
        return ([s for s in self.stages if s.name in names], [b for b in self.bridges if b.name in names])
