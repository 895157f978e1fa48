"""Pipeline: a named list of stages plus middleware, in one documented order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from streams.legacy import ListIngress
from streams.message import Handler, Middleware
from streams.stage import Stage


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
    """

    name: str
    stages: Sequence[Stage]
    middleware: Sequence[Middleware] = field(default_factory=tuple)
    bridges: Sequence[ListIngress] = field(default_factory=tuple)
    on_stop: Sequence[Callable[[], Awaitable[object]]] = field(default_factory=tuple)
    registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        for stage in self.stages:
            refuse_batched_middleware(stage, self.middleware)
        names = [stage.name for stage in self.stages] + [bridge.name for bridge in self.bridges]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline {self.name!r}: stage names must be unique, got {names}")

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
