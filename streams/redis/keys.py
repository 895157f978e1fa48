"""The Redis keyspace of one pipeline: every key millstream writes, in one place.

All keys of a pipeline share the hash tag ``{<pipeline>}`` so that the Redis
functions which touch several of them run on Redis Cluster too. With namespace
``ms`` and pipeline ``imgtr``:

=====================================  ==========  ==========================================
key                                    type        written by / meaning
=====================================  ==========  ==========================================
``ms:{imgtr}:stream:<name>``           stream      producers and stages; consumer group per stage
``ms:{imgtr}:stream:errors``           stream      error records (final failures, bad input)
``ms:{imgtr}:dlq:<stage>``             stream      dead letters of one stage, with provenance
``ms:{imgtr}:delayed:<name>``          zset        retries due later for stream <name>; score = due ms
``ms:{imgtr}:hb:<group>:<consumer>``   string      consumer heartbeat (value: ms), short TTL
``ms:{imgtr}:run:<group>:<consumer>``  string      JSON {entry id: ms it was read}: what it holds, same TTL
``ms:{imgtr}:fences``                  hash        <stream>/<group>/<consumer> -> fence token
``ms:{imgtr}:lease:<stream>:<group>``   string      the consumer reading an owned stream (keyed stages), TTL
``ms:{imgtr}:status:<n>``              hash        request_id -> last transition (JSON); bucket n
``ms:{imgtr}:status:head``             hash        n: the current status bucket, at: when it opened
``ms:{imgtr}:seen:<n>``                hash        request_id -> its first entry id (dedup); bucket n
``ms:{imgtr}:seen:head``               hash        n, at: the current dedup bucket
``ms:{imgtr}:events``                  stream      one entry per commit: its transitions; capped
``ms:{imgtr}:audit``                   stream      operator actions on dead letters (replay, purge)
``ms:{imgtr}:paused``                  hash        stage -> JSON {by, at}: stages paused by an operator
``ms:{imgtr}:cancels``                 hash        request_id -> JSON {by, reason, at, until}: cancelled tasks
``ms:{imgtr}:counts``                  hash        <stage>/<state> -> transitions committed so far
``ms:{imgtr}:ratelimit:<name>``        string      a shared rate limit's state (streams.redis.ratelimit)
``ms:{imgtr}:ratelimit:stage.<s>``     string      stage <s>'s ``Stage.rate`` (GCRA: its next slot, us)
=====================================  ==========  ==========================================

Status and dedup records are kept in at most nine numbered buckets each
(see functions/millstream.lua and streams.redis.retention): bounded by time
(status_ttl, dedup_window) and, when set, by count (status_max_records,
dedup_max_keys). ``<namespace>:{<pipeline>}:dedup:<request_id>`` string keys
were the dedup records of earlier versions; they expire within a day of the
upgrade and are no longer written.

Consumer groups are named after the stage that reads the stream. Every key
starts with ``<namespace>:{``. The Redis lists a pipeline bridges (streams.bridge)
are exact keys outside this keyspace: ``Keys`` given them (``Pipeline.list_keys``)
refuses a namespace that one of them lies in, so no key of the pipeline can
ever equal one of its lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streams.errors import ConfigError
from streams.names import checked

ERRORS = "errors"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for pipeline ``pipeline`` under ``namespace``.

    ``lists``: the lists outside the keyspace that the pipeline reads or writes;
    a namespace that one of them starts with (``<namespace>:``) is refused.
    """

    namespace: str
    pipeline: str
    lists: Sequence[str] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        checked("namespace", self.namespace)
        checked("pipeline", self.pipeline)
        for key in self.lists:
            if key.startswith(f"{self.namespace}:"):
                raise ConfigError("namespace", f"{self.namespace!r} collides with legacy list {key!r}: "
                                  "the lists a pipeline bridges lie outside its namespace")

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:{{{self.pipeline}}}"

    def stream(self, name: str) -> str:
        return f"{self.prefix}:stream:{checked('stream', name)}"

    @property
    def errors(self) -> str:
        """Error records: an ordinary stream (logical name "errors"), so stages can read it."""
        return self.stream(ERRORS)

    def dlq(self, stage: str) -> str:
        return f"{self.prefix}:dlq:{checked('stage', stage)}"

    def delayed(self, stream_name: str) -> str:
        return f"{self.prefix}:delayed:{stream_name}"

    def heartbeat(self, group: str, consumer: str) -> str:
        return f"{self.prefix}:hb:{group}:{consumer}"

    def lease(self, stream_name: str, group: str) -> str:
        """Who reads an owned stream (a keyed stage's partition or router) now: a consumer, with a TTL."""
        return f"{self.prefix}:lease:{stream_name}:{group}"

    def running(self, group: str, consumer: str) -> str:
        """The entries a consumer holds and when it read each (``GET /v1/running``), beside its heartbeat."""
        return f"{self.prefix}:run:{group}:{consumer}"

    @property
    def fences(self) -> str:
        """Fence tokens: changed for a consumer whenever a claim takes entries from it."""
        return f"{self.prefix}:fences"

    @property
    def status_prefix(self) -> str:
        return f"{self.prefix}:status:"

    def status(self, bucket: int) -> str:
        """The status hash of bucket ``bucket`` (see streams.redis.tasks)."""
        return f"{self.status_prefix}{bucket}"

    @property
    def status_head(self) -> str:
        """Which status bucket is current, and since when (ms)."""
        return f"{self.status_prefix}head"

    @property
    def seen_prefix(self) -> str:
        """Prefix of the dedup buckets: ms_publish derives it from ``status_prefix`` (status: -> seen:)."""
        return f"{self.prefix}:seen:"

    def seen(self, bucket: int) -> str:
        """The dedup hash of bucket ``bucket``: request_id -> the first entry's id."""
        return f"{self.seen_prefix}{bucket}"

    @property
    def seen_head(self) -> str:
        return f"{self.seen_prefix}head"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    def ratelimit(self, name: str) -> str:
        return f"{self.prefix}:ratelimit:{checked('rate limit', name)}"

    def stage_rate(self, stage: str) -> str:
        """``Stage.rate``'s state for ``stage``, shared by all its workers (docs/controls/rate-limits.md)."""
        return self.ratelimit(f"stage.{stage}")

    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"

    @property
    def paused(self) -> str:
        """Stages an operator paused: stage -> JSON {by, at}; workers of a stage in it stop reading."""
        return f"{self.prefix}:paused"

    @property
    def cancels(self) -> str:
        """Tasks an operator cancelled (streams.redis.control): request_id -> JSON {by, reason, at, until}.

        Bounded by time: a cancel counts until ``until``; writers drop expired fields they sample, and
        the key expires with its latest cancel (docs/controls/cancel.md).
        """
        return f"{self.prefix}:cancels"

    @property
    def counts(self) -> str:
        """Committed transitions per stage and state (field ``<stage>/<state>``), for the API's stats."""
        return f"{self.prefix}:counts"

    def dedup(self, request_id: str) -> str:
        """The key the publisher declares per item: the dedup string key of earlier versions.

        Dedup records now live in the ``seen`` buckets; the key is declared only
        (it keeps the call on the pipeline's cluster slot) and never written.
        """
        return f"{self.prefix}:dedup:{request_id}"

    def stream_name(self, key: str) -> str:
        """Inverse of :meth:`stream`: the logical name of a stream key."""
        return key.removeprefix(f"{self.prefix}:stream:")
