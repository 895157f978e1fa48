"""Stage: the declaration of one step of a pipeline (no behaviour)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from streams.message import BatchHandler, Handler
from streams.policy import RetryPolicy
from streams.priority import LEVELS, Priority, lane, lane_group
from streams.rates import StageRate, parse_rate
from streams.routing import KeyRouter


@dataclass(frozen=True, slots=True)
class Stage:
    """One consumer group reading ``source`` and writing to ``sinks``.

    Streams are named logically ("tasks", "ocr"); ``streams.redis.keys.Keys`` maps
    them to keys. ``processor`` takes one message, or a batch of up to
    ``batch_size`` messages when ``batched`` is true.

    * ``max_in_flight`` bounds entries read but not yet committed: the reader
      stops reading at that mark (no reading ahead).
    * ``timeout`` bounds one handler attempt (a timeout is retryable).
      ``soft_timeout`` (optional, shorter) raises ``SoftTimeout`` inside the
      handler first, which it may catch to finish early (docs/controls/timeouts.md).
    * ``deadline`` is how long an entry may stay with a live consumer before
      another consumer claims it; a dead consumer's entries are claimed as soon
      as its heartbeat expires.
    * ``max_attempts`` bounds handler attempts (``Message.attempt``: 1, then
      one more per retry); ``crash_limit`` bounds deliveries (``Message.deliveries``:
      how often the transport delivered one entry, more than once only when
      consumers died or stalled holding it, a crash loop). The two never mix:
      an attempt is a decision of the handler, a delivery one of the transport.
    * ``rate`` ("100/m", "10/10s", "100/m burst 10"; streams.rates) admits the
      stage's handler attempts at that rate across every worker (one slot per
      message, batches included); "" is no limit. Waiting for a slot is not
      part of ``timeout``. ``rate_horizon``: how far ahead (seconds) a worker
      may reserve a slot; a farther one is waited for unreserved
      (docs/controls/rate-limits.md).
    * ``priorities``: read the source as four lanes, critical first (streams.priority);
      handlers start in strict order of level, except that ``priority_share`` (0 to
      0.5) of the starts go to the highest waiting lower level while a higher one
      waits, so a flood of critical tasks cannot starve the rest
      (docs/controls/priorities.md). ``lanes`` are the stages that run it, one per
      level; ``level`` is a lane's (None for the declared stage).
    * ``key`` (a payload field, e.g. "platform"): entries with the same key are handled
      one at a time in publish order, different keys in parallel, across every worker
      (docs/controls/keyed.md). The stage runs as a router, reading ``source`` and
      sending each entry to one of ``partitions`` streams by its key's hash, and one
      lane per partition; each of these is read by one consumer at a time, holding a
      lease that lasts the heartbeat TTL. ``role`` is a lane's ("router" or "partition").
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
    soft_timeout: float | None = None
    deadline: float = 600.0
    max_attempts: int = 5
    crash_limit: int = 3
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate: str = ""
    rate_horizon: float = 5.0
    priorities: bool = False
    priority_share: float = 0.0
    level: Priority | None = None
    key: str = ""
    partitions: int = 16
    role: str = ""

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
        if self.soft_timeout is not None and not 0 < self.soft_timeout < self.timeout:
            raise ValueError(f"stage {self.name!r}: soft_timeout must be > 0 and < timeout "
                             f"({self.timeout:g} s)")
        object.__setattr__(self, "sinks", tuple(self.sinks))
        self._check_rate()
        if not 0 <= self.priority_share <= 0.5:
            raise ValueError(f"stage {self.name!r}: priority_share must be within 0 and 0.5")
        if self.priority_share and not self.priorities:
            raise ValueError(f"stage {self.name!r}: priority_share needs priorities=True")
        self._check_key()

    def _check_key(self) -> None:
        if not self.key:
            return
        if self.priorities or self.batched:
            raise ValueError(f"stage {self.name!r}: a keyed stage handles one entry of a key at a time, "
                             "in publish order: it has no priorities and is not batched")
        if not 1 <= self.partitions <= 1024:
            raise ValueError(f"stage {self.name!r}: partitions must be within 1 and 1024")

    @property
    def owned(self) -> bool:
        """Whether one consumer at a time reads this lane (a keyed stage's router or partition)."""
        return bool(self.role)

    def partition_streams(self) -> list[str]:
        """The streams of a keyed stage's partitions: ``<source>.p<n>``."""
        return [f"{self.source}.p{n}" for n in range(self.partitions)]

    @property
    def lanes(self) -> tuple[Stage, ...]:
        """The stages that run this one: itself, one per level (highest first) when it has priorities,
        or a keyed stage's router then one per partition."""
        if self.level is not None or self.role:
            return (self,)
        if self.priorities:
            return tuple(replace(self, source=lane(self.source, level), group=lane_group(self.group, level),
                                 level=level) for level in LEVELS)
        if self.key:
            return (self._router(), *(replace(self, source=s, group=f"{self.group}.p{n}", role="partition")
                                      for n, s in enumerate(self.partition_streams())))
        return (self,)

    def _router(self) -> Stage:
        """The router lane of a keyed stage (streams.routing): its own name, so its figures are its own."""
        streams = self.partition_streams()
        return Stage(f"{self.name}.route", self.source, KeyRouter(self.key, streams), sinks=streams,
                     group=self.group, batched=True, batch_size=500, max_in_flight=1000, timeout=60.0,
                     deadline=self.deadline, max_attempts=1, crash_limit=self.crash_limit, role="router")

    def _check_rate(self) -> None:
        try:
            self.rate_limit  # noqa: B018 - parsed here so that a bad rate fails at construction
        except ValueError as bad:
            raise ValueError(f"stage {self.name!r}: {bad}") from None
        if not self.rate_horizon > 0:
            raise ValueError(f"stage {self.name!r}: rate_horizon must be > 0")

    @property
    def rate_limit(self) -> StageRate | None:
        """``rate`` parsed, or None without one."""
        return parse_rate(self.rate) if self.rate else None
