"""Figures a transport reports about a pipeline: its streams, groups and retained state.

Plain records: the Redis transport measures them (streams.redis.stats,
streams.redis.retention), metrics export them (streams.metrics), and
``millstream status`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Retained:
    """``records`` of one kind of retained state of a pipeline, taking about ``bytes``."""

    kind: str
    records: int
    bytes: int


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One consumer group's figures. ``entries_read``: entries delivered to the group since
    it was made (XINFO GROUPS ``entries-read``; None where Redis cannot tell), a counter whose
    change between two samples is the group's read rate (``millstream top``)."""

    group: str
    lag: int
    lag_seconds: float
    pending: int
    oldest_pending_seconds: float
    consumers: int
    live_consumers: int
    heartbeat_age_seconds: float
    dlq_length: int
    dlq_oldest_seconds: float
    entries_read: int | None = None


@dataclass(frozen=True, slots=True)
class StreamStats:
    pipeline: str
    stream: str
    length: int
    delayed: int
    groups: tuple[GroupStats, ...]
    retained: tuple[Retained, ...] = ()  # the pipeline's retained state (streams.redis.retention measures it)
