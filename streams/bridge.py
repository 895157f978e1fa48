"""The list bridge: Redis list queues outside the pipeline <-> its streams (generic).

A pipeline may have to meet producers and consumers that speak Redis lists, the
queues of a system that predates it (a *legacy list*): producers RPUSH tasks,
consumers BLPOP outcomes. The bridge is the same for any pipeline; which lists,
which task fields and which outcome JSON are the pipeline's own (seed 000's are
in processors/legacy.py).

* Ingress: a ``ListIngress`` declares a list whose items become entries of a
  logical stream. Its runner (streams.redis.bridge) pops from the head of the
  list, the end a BLPOP consumer used, and appends to the stream in the same
  atomic call: a crash of the bridge neither loses nor repeats a task. Items
  move unread (the stage reading the stream validates them); one over the
  payload limit becomes an error record instead, carrying the pipeline's id
  fields (``Pipeline.id_fields``) as found near its start
  (docs/decisions/0017-bridge-moves-items-unread.md).
* Egress: ordinary stages whose processors return ``Outgoing(list=...)``; the
  RPUSH is part of the stage's atomic commit, so each outcome is pushed exactly
  once. What the pushed JSON holds is the processor's business.

Lists are named as exact keys and live outside the pipeline's keyspace: a
pipeline declares them (the bridges' lists and ``Pipeline.lists``) and
``streams.redis.keys.Keys`` refuses a namespace they would fall in. They are
also outside the pipeline's hash tag: on Redis Cluster the lists and the
pipeline must live on one node.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class ListIngress:
    """Move tasks pushed onto Redis list ``list_key`` into logical stream ``stream``, ``batch`` per call."""

    name: str
    list_key: str
    stream: str
    batch: int = 100

    def __post_init__(self) -> None:
        # One ms_ingress call costs Redis about 10 µs per item: 500 items keep it near 5 ms.
        if not 1 <= self.batch <= MAX_BATCH:
            raise ValueError(f"ingress {self.name!r}: batch must be between 1 and {MAX_BATCH}")
