"""What the engine needs from a transport, as Protocols.

A stage runner (streams.engine.runner) reads, handles and commits through one
``StageTransport``: the stage's consumer group, seen by one consumer. The Redis
transport (streams.redis.transport) implements it with consumer groups and the
``millstream`` functions; the in-memory one (streams.testing) with dicts, for
tests. One conformance suite (tests/conformance) runs against both.

The semantics every transport keeps:

* Reading delivers each entry to one consumer, which holds it (pending) until
  a commit acknowledges it or a claim takes it away. ``deliveries`` counts how
  often an entry was delivered: above 1, a consumer died or stalled holding it.
* ``commit`` applies a batch of transitions (streams.transition) atomically,
  each with its acknowledgement, and skips whole the entries no longer pending
  for this consumer (fencing). Entries read under the current fence token are
  known to be ours; ``suspect`` names the others, which are checked one by one.
  A claim that takes entries from a consumer changes that consumer's token.
* Claims: ``claim_dead`` takes a consumer's entries once its heartbeat expired,
  ``claim_stale`` those held longer than a deadline, ``own_pending`` re-delivers
  this consumer's own entries after a restart, ``claim_lost`` those a lost
  reply left it holding unknowingly. ``renew`` resets the idle time of entries
  still held, so live consumers do not claim them as stale.
* Upkeep: due retries go back to their stream (``promote_due``); acknowledged
  entries and retained records are trimmed (``trim``). ``paused`` says whether
  an operator paused the stage (for every consumer, until resumed): the runner
  asks once per claim interval, and while paused reads and claims nothing.
* Rates: ``Transport.limiter`` gives a stage with a ``rate`` one limit shared
  by every consumer of the stage in every process (streams.rates); its
  ``acquire`` raises only for an outage (TransportError).
* Cancels: ``cancels`` says whether any task may be cancelled (asked once per
  claim interval); only then does the runner ask ``cancelled`` about the request
  ids of each read batch and of the entries it holds (docs/controls/cancel.md).

Failures that pass (a server restarting, a dropped connection) raise one of
``transient``: the runner retries them. Anything else is a bug and stops it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Container, Mapping, Sequence
from typing import NamedTuple, Protocol

from streams.delivery import Delivery
from streams.rates import Limiter
from streams.stage import Stage
from streams.transition import Transition, Verdict


class Cancel(NamedTuple):
    """An operator's cancel of a task: who, and why ("" when they gave no reason)."""

    by: str
    reason: str


class GroupReader(Protocol):
    """Reading and claiming entries of the stage's source, as one consumer of its group."""

    async def join(self) -> None:
        """Create the group if it is missing (at the stream's start) and join it."""

    async def token(self) -> str:
        """This consumer's current fence token ("" before anything was ever taken from it)."""

    def own_pending(self, page: int) -> AsyncIterator[list[Delivery]]:
        """This consumer's own pending entries, oldest first, ``page`` at a time."""

    async def read_new(self, count: int, block_ms: int) -> list[Delivery]:
        """Up to ``count`` never-delivered entries, waiting at most ``block_ms`` (0: no limit) for one."""

    async def claim_lost(self, held: Container[str]) -> list[Delivery]:
        """The entries pending for this consumer that are not in ``held``, delivered again."""

    async def consumers(self) -> list[str]:
        """Every consumer of the group, this one included."""

    async def claim_dead(self, consumer: str, count: int) -> list[Delivery]:
        """Up to ``count`` entries of ``consumer`` if its heartbeat expired ([] if it lives)."""

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Delivery]:
        """Up to ``count`` entries other consumers have held for longer than ``min_idle_ms``."""

    async def renew(self, ids: list[str]) -> list[str]:
        """Reset the idle time of those ``ids`` still this consumer's; return them."""


class OwnedReader(Protocol):
    """An owned stream (a keyed stage's router source or partition): one reader at a time, by lease.

    A lease lasts ``ttl_ms`` unless renewed. Reads and claims check it atomically
    and return None unless this consumer holds it; ``claim_owned`` takes entries
    pending for anyone (a takeover), bumping their holders' fences.
    """

    async def lease(self, mode: str, ttl_ms: int) -> bool:
        """'take' (free or ours), 'renew' (ours) or 'release' (ours) the lease; whether it is (was) ours."""

    async def claim_owned(self, start: str, count: int) -> list[Delivery] | None:
        """Up to ``count`` entries pending for anyone after ``start`` ('-': all), now ours."""

    async def read_owned(self, count: int) -> list[Delivery] | None:
        """Up to ``count`` never-delivered entries, without waiting."""

    async def live_consumers(self) -> list[str]:
        """The group's consumers whose heartbeat lives, sorted."""


class Committer(Protocol):
    async def commit(self, batch: Sequence[Transition], token: str,
                     suspect: Sequence[int] = ()) -> Verdict:
        """Apply ``batch`` atomically (see the module doc); ``suspect``: 0-based positions."""


class Upkeep(Protocol):
    async def heartbeat(self, ttl: float, holding: Mapping[str, int] | None = None) -> None:
        """Say this consumer is alive for ``ttl`` seconds more, holding ``holding`` (entry id -> when it
        was read, unix ms) for operators to see (``GET /v1/running``)."""

    async def promote_due(self) -> int:
        """Move the source's retries that are due back into it; return how many."""

    async def trim(self) -> None:
        """Drop acknowledged entries and what retention bounds no longer keep."""

    async def paused(self) -> bool:
        """Whether an operator paused the stage (streams.redis.control): one cheap lookup."""

    async def cancels(self) -> bool:
        """Whether any task of the pipeline may be cancelled now: one cheap lookup."""

    async def cancelled(self, request_ids: Sequence[str]) -> Mapping[str, Cancel]:
        """Those of ``request_ids`` an operator cancelled, with the cancel: one lookup for them all."""


class StageTransport(GroupReader, OwnedReader, Committer, Upkeep, Protocol):
    """Everything one stage's runner needs, for one consumer of its group."""

    transient: tuple[type[BaseException], ...]
    """Failures that pass (an outage): the runner waits and retries."""

    def address(self, stream: str) -> str:
        """The transport's own name of logical stream ``stream`` (records and dead letters carry it)."""

    async def leave(self) -> None:
        """Stop: drop the heartbeat (peers may claim at once) and close connections."""


class Transport(Protocol):
    """One pipeline's transport in one process: it hands each stage runner its part."""

    @property
    def pipeline(self) -> str:
        """The pipeline's name (metrics and keys carry it)."""

    def for_stage(self, stage: Stage, consumer: str) -> StageTransport:
        """The part that runs ``stage`` as ``consumer``."""

    def limiter(self, stage: Stage) -> Limiter:
        """``stage.rate``'s limit, shared by every consumer of ``stage`` (the stage has a rate)."""
