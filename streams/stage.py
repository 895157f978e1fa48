"""Stage: the declaration of one step of a pipeline (no behaviour)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streams.message import BatchHandler, Handler
from streams.policy import RetryPolicy


@dataclass(frozen=True, slots=True)
class Stage:
    """One consumer group reading ``source`` and writing to ``sinks``.

    Streams are named logically ("tasks", "ocr"); ``streams.redis.keys.Keys`` maps
    them to keys. ``processor`` takes one message, or a batch of up to
    ``batch_size`` messages when ``batched`` is true.

    * ``max_in_flight`` bounds entries read but not yet committed: the reader
      stops reading at that mark (no reading ahead).
    * ``timeout`` bounds one handler attempt (a timeout is retryable).
    * ``deadline`` is how long an entry may stay with a live consumer before
      another consumer claims it; a dead consumer's entries are claimed as soon
      as its heartbeat expires.
    * ``max_attempts`` bounds handler attempts (``Message.attempt``: 1, then
      one more per retry); ``crash_limit`` bounds deliveries (``Message.deliveries``:
      how often the transport delivered one entry, more than once only when
      consumers died or stalled holding it, a crash loop). The two never mix:
      an attempt is a decision of the handler, a delivery one of the transport.
    """

    name: str
    source: str
    processor: Handler | BatchHandler
    sinks: Sequence[str] = ()
    group: str = ""
    batched: bool = False
    concurrency: int = 1
    batch_size: int = 100
    max_in_flight: int = 0
    timeout: float = 60.0
    deadline: float = 600.0
    max_attempts: int = 5
    crash_limit: int = 3
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self.name)
        if not self.max_in_flight:
            object.__setattr__(self, "max_in_flight", max(self.batch_size, self.concurrency))
        for name in ("concurrency", "batch_size", "max_in_flight", "max_attempts", "crash_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"stage {self.name!r}: {name} must be >= 1")
        if self.timeout <= 0 or self.deadline <= 0:
            raise ValueError(f"stage {self.name!r}: timeout and deadline must be > 0")
        object.__setattr__(self, "sinks", tuple(self.sinks))
