"""Metrics: every Prometheus collector of millstream, on a registry passed in.

Stage figures are counted by the runner as things happen (outcomes once
committed); stream and group figures (lengths, lag, pending, consumers, dead
letters) are sampled from Redis by ``streams.redis.stats`` and set here by the
worker's stats loop.

Handler durations are a collector of our own (``Durations``): a
prometheus-client Histogram takes a lock and walks its buckets per
observation, a visible cost when handlers take microseconds.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from streams.figures import Retained, StreamStats
from streams.transition import State

_STAGE = ["pipeline", "stage"]
_GROUP = ["pipeline", "stream", "group"]
_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Observations:
    """One label set's histogram: counts per bucket (the last is +Inf) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class Durations(Collector):
    """A histogram with one ``Observations`` per label set, exported as a Prometheus histogram."""

    def __init__(self, name: str, doc: str, labels: Sequence[str], bounds: Sequence[float]) -> None:
        self.name, self.doc, self.labels_names, self.bounds = name, doc, list(labels), tuple(bounds)
        self._children: dict[tuple[str, ...], Observations] = {}

    def labels(self, *values: str) -> Observations:
        return self._children.setdefault(values, Observations(self.bounds))

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels_names)
        edges = [*map(floatToGoString, self.bounds), "+Inf"]
        for values, child in list(self._children.items()):
            cumulative = list(accumulate(child.counts))
            family.add_metric(list(values), list(zip(edges, cumulative, strict=True)), child.total)
        yield family


@dataclass(frozen=True, slots=True)
class StageMetrics:
    """The collectors of one stage, labels bound once (``labels()`` is slow on a hot path)."""

    processed: Any
    failed: Any
    retried: Any
    errors: Any
    dead_lettered: Any
    fenced: Any
    handed_back: Any
    duration: Any
    in_flight: Any
    claimed_dead: Any
    claimed_stale: Any
    deadline: Any
    paused: Any
    by_state: dict[str, Any]
    throttled: Any
    throttled_seconds: Any

    def committed(self, states: Iterable[str]) -> None:
        """Count committed outcomes by their transition's state."""
        for state, n in Tally(states).items():
            counter = self.by_state.get(state)
            if counter is not None:
                counter.inc(n)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

        def counter(name: str, doc: str, labels: list[str] = _STAGE) -> Counter:
            return Counter(f"millstream_{name}", doc, labels, registry=registry)

        def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
            return Gauge(f"millstream_{name}", doc, labels, registry=registry)

        self.processed = counter("stage_processed", "Entries handled successfully and committed.")
        self.failed = counter("stage_failed", "Handler attempts that raised or timed out.")
        self.retried = counter("stage_retried", "Entries scheduled for a later retry.")
        self.errors = counter("stage_error_records", "Entries ended with an error record.")
        self.dead_lettered = counter("stage_dead_lettered", "Entries moved to the dead-letter stream.")
        self.fenced = counter("stage_fenced", "Outcomes dropped: the entry was claimed by another consumer.")
        self.handed_back = counter("stage_handed_back", "Unstarted entries handed back at shutdown.")
        self.cancelled = counter("stage_cancelled", "Tasks ended by an operator's cancel.")
        self.claimed = counter("stage_claimed", "Entries claimed from other consumers.", [*_STAGE, "reason"])
        self.duration = Durations("millstream_stage_handler_seconds", "Handler duration per attempt.",
                                  _STAGE, _BOUNDS)
        registry.register(self.duration)
        self.deadline = gauge("stage_deadline_seconds", "How long a live consumer may hold an entry.", _STAGE)
        self.in_flight = gauge("stage_in_flight", "Entries held: read, not yet committed.", _STAGE)
        self.paused = gauge("stage_paused", "1 while an operator paused the stage (this runner reads "
                            "nothing new), else 0.", _STAGE)
        self.throttled = counter("stage_throttled", "Handler attempts that waited for a slot of the "
                                 "stage's rate.")
        self.throttled_seconds = counter("stage_throttled_seconds", "Seconds attempts spent waiting for "
                                         "slots of the stage's rate (not part of their timeout).")
        self.length = gauge("stream_length", "Entries in the stream.", ["pipeline", "stream"])
        self.delayed = gauge("stream_delayed", "Retries waiting in the delayed set.", ["pipeline", "stream"])
        self.lag = gauge("group_lag_entries", "Entries not yet delivered to the group.", _GROUP)
        self.lag_seconds = gauge("group_lag_seconds", "Age of the oldest undelivered entry.", _GROUP)
        self.pending = gauge("group_pending", "Entries delivered and not acknowledged.", _GROUP)
        self.oldest_pending = gauge(
            "group_oldest_pending_seconds", "Idle time of the oldest pending entry.", _GROUP
        )
        self.consumers = gauge("group_consumers", "Consumers registered in the group.", _GROUP)
        self.live_consumers = gauge("group_live_consumers", "Consumers with a live heartbeat.", _GROUP)
        self.heartbeat_age = gauge(
            "group_heartbeat_age_seconds", "Age of the stalest live consumer heartbeat.", _GROUP
        )
        self.dlq_length = gauge("dlq_length", "Dead letters of the stage.", _STAGE)
        self.dlq_oldest = gauge("dlq_oldest_seconds", "Age of the oldest dead letter.", _STAGE)
        self.retained = gauge("retained_records", "Records kept in Redis after their task: status, "
                              "dedup, events (transitions' entries), errors, dlq.", ["pipeline", "kind"])
        self.retained_bytes = gauge("retained_bytes", "Redis memory of the retained records (MEMORY USAGE, "
                                    "sampled).", ["pipeline", "kind"])

    def for_stage(self, pipeline: str, stage: str) -> StageMetrics:
        labels = (pipeline, stage)
        processed = self.processed.labels(*labels)
        return StageMetrics(
            processed=processed, failed=self.failed.labels(*labels),
            retried=self.retried.labels(*labels), errors=self.errors.labels(*labels),
            dead_lettered=self.dead_lettered.labels(*labels), fenced=self.fenced.labels(*labels),
            handed_back=self.handed_back.labels(*labels), duration=self.duration.labels(*labels),
            in_flight=self.in_flight.labels(*labels),
            claimed_dead=self.claimed.labels(*labels, "dead_consumer"),
            claimed_stale=self.claimed.labels(*labels, "deadline"),
            deadline=self.deadline.labels(*labels), paused=self.paused.labels(*labels),
            throttled=self.throttled.labels(*labels),
            throttled_seconds=self.throttled_seconds.labels(*labels),
            by_state={
                State.FORWARDED: processed, State.DONE: processed,
                State.RETRYING: self.retried.labels(*labels), State.FAILED: self.errors.labels(*labels),
                State.DEAD_LETTERED: self.dead_lettered.labels(*labels),
                State.CANCELLED: self.cancelled.labels(*labels),
            },
        )

    def observe(self, pipeline: str, stats: StreamStats) -> None:
        """Set the stream, group and dead-letter gauges from one sample."""
        self.length.labels(pipeline, stats.stream).set(stats.length)
        self.delayed.labels(pipeline, stats.stream).set(stats.delayed)
        for g in stats.groups:
            labels = (pipeline, stats.stream, g.group)
            self.lag.labels(*labels).set(g.lag)
            self.lag_seconds.labels(*labels).set(g.lag_seconds)
            self.pending.labels(*labels).set(g.pending)
            self.oldest_pending.labels(*labels).set(g.oldest_pending_seconds)
            self.consumers.labels(*labels).set(g.consumers)
            self.live_consumers.labels(*labels).set(g.live_consumers)
            self.heartbeat_age.labels(*labels).set(g.heartbeat_age_seconds)
            self.dlq_length.labels(pipeline, g.group).set(g.dlq_length)
            self.dlq_oldest.labels(pipeline, g.group).set(g.dlq_oldest_seconds)
        self.observe_retained(pipeline, stats.retained)

    def observe_retained(self, pipeline: str, retained: Iterable[Retained]) -> None:
        """Set the retained-state gauges (records and bytes per kind)."""
        for r in retained:
            self.retained.labels(pipeline, r.kind).set(r.records)
            self.retained_bytes.labels(pipeline, r.kind).set(r.bytes)
