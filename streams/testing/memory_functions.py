"""The millstream functions (streams/redis/functions/millstream.lua), in Python, over a MemoryBroker.

Each function here decides exactly as its Lua namesake does, and runs without
awaiting, so it is atomic as a Redis function is: ``commit`` (ms_commit),
``claim_dead`` / ``claim_stale`` / ``claim_mine`` / ``claim_lost`` (ms_claim_*),
``renew`` (ms_renew), ``promote`` (ms_promote), ``trim`` (ms_trim). Claims
return [(entry id, fields, deliveries), ...] as the Lua does.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.codec import envelope
from streams.names import checked
from streams.testing.memory_broker import ERRORS_STREAM, Done, MemoryBroker
from streams.testing.memory_streams import EntryId, format_id, parse_id
from streams.transition import (
    Append,
    DeadLetter,
    Delay,
    ErrorRecord,
    Forward,
    ListPush,
    Op,
    Transition,
    Verdict,
)

Claimed = list[tuple[str, list[bytes], int]]


def _check(op: Op) -> None:
    """Refuse a bad name before anything is written, as the Redis transport does while packing."""
    if isinstance(op, Forward | Delay | Append):
        checked("stream", op.stream)
    elif isinstance(op, DeadLetter):
        checked("stage", op.stage)


def _apply(broker: MemoryBroker, op: Op) -> None:
    if isinstance(op, Forward):
        broker.add(op.stream, [f.encode() for f in envelope(op.data, op.request_id, 1, op.origin_ms)])
    elif isinstance(op, ErrorRecord):
        broker.add(ERRORS_STREAM, [f.encode() for f in envelope(op.data, op.request_id, 1, op.origin_ms)])
    elif isinstance(op, Append):
        broker.add(op.stream, list(op.fields))
    elif isinstance(op, DeadLetter):
        broker.dead_letter_stream(op.stage).add(list(op.fields), broker.now_ms())
    elif isinstance(op, ListPush):
        broker.lists.setdefault(op.list, []).append(op.value)
    else:
        broker.delayed.setdefault(op.stream, {})[tuple(op.fields)] = op.due_ms


def commit(broker: MemoryBroker, source: str, group: str, consumer: str, stage: str,
           batch: Sequence[Transition], token: str, suspect: Sequence[int], events_maxlen: int) -> Verdict:
    """ms_commit: apply each transition still ours, ack it, record it; report the others fenced.

    An entry is checked against the consumer's pending list only when it is
    suspect or when ``token`` is no longer the consumer's current token.
    """
    for t in batch:
        for op in t.ops:
            _check(op)
    current = broker.fences.get((source, group, consumer), "")
    checked_at = set(range(len(batch))) if current != token else set(suspect)
    g = broker.stream(source).group(group)
    fenced: list[int] = []
    done: list[Done] = []
    details: list[bytes] = []
    for i, t in enumerate(batch):
        if i in checked_at and not g.holds(consumer, parse_id(t.entry_id)):
            fenced.append(i)
            continue
        for op in t.ops:
            _apply(broker, op)
        done.append((t.request_id, str(t.state), t.entry_id))
        details.append(t.detail)
    if done:
        broker.stream(source).ack(group, [parse_id(d[2]) for d in done])
        broker.record(stage, done, events_maxlen, details)
    broker.changed()
    return Verdict(current, fenced)


def _claim(broker: MemoryBroker, source: str, group: str, me: str, ids: list[EntryId]) -> Claimed:
    """The Lua's ``claim``: new tokens for the owners taken from, then XCLAIM to ``me``."""
    if not ids:
        return []
    stream = broker.stream(source)
    pending = stream.group(group).pending
    broker.bump_fences(source, group, {pending[i].consumer for i in ids} - {me})
    claimed = stream.claim(group, me, ids, broker.now_ms())
    broker.changed()
    return [(format_id(i), flat, pending[i].deliveries) for i, flat in claimed]


def lease(broker: MemoryBroker, source: str, group: str, me: str, mode: str, ttl_ms: int) -> bool:
    """ms_lease: take, renew or release the lease of an owned stream; whether it is (was) ``me``'s."""
    now = broker.now_ms()
    holder, until = broker.leases.get((source, group), ("", 0))
    if until <= now:
        holder = ""
    if holder and holder != me:
        return False
    if mode == "release":
        broker.leases.pop((source, group), None)
        return True
    if not holder and mode == "renew":
        return False
    broker.leases[(source, group)] = (me, now + ttl_ms)
    return True


def holds_lease(broker: MemoryBroker, source: str, group: str, me: str) -> bool:
    holder, until = broker.leases.get((source, group), ("", 0))
    return holder == me and until > broker.now_ms()


def claim_owned(broker: MemoryBroker, source: str, group: str, me: str, after: str | None,
                count: int) -> Claimed | None:
    """ms_claim_owned: if ``me`` holds the lease, the first ``count`` entries pending for anyone after it."""
    if not holds_lease(broker, source, group, me):
        return None
    ids = sorted(broker.stream(source).group(group).pending)
    if after is not None:
        ids = [i for i in ids if i > parse_id(after)]
    return _claim(broker, source, group, me, ids[:count])


def claim_dead(broker: MemoryBroker, source: str, group: str, dead: str, me: str, count: int) -> Claimed:
    """ms_claim_dead: ``dead``'s oldest ``count`` entries once its heartbeat expired; it goes once empty."""
    if broker.alive(group, dead):
        return []
    g = broker.stream(source).group(group)
    out = _claim(broker, source, group, me, g.held_by(dead)[:count])
    if not g.held_by(dead):
        g.consumers.discard(dead)
    return out


def claim_stale(broker: MemoryBroker, source: str, group: str, me: str, min_idle_ms: int,
                count: int) -> Claimed:
    """ms_claim_stale: of the first ``count`` entries idle >= ``min_idle_ms``, those of others."""
    g = broker.stream(source).group(group)
    now = broker.now_ms()
    idle = [i for i in sorted(g.pending) if now - g.pending[i].delivered_ms >= min_idle_ms][:count]
    return _claim(broker, source, group, me, [i for i in idle if g.pending[i].consumer != me])


def claim_mine(broker: MemoryBroker, source: str, group: str, me: str, after: str | None,
               count: int) -> Claimed:
    """ms_claim_mine: ``me``'s own pending entries after id ``after`` (None: from the start)."""
    held = broker.stream(source).group(group).held_by(me)
    if after is not None:
        floor = parse_id(after)
        held = [i for i in held if i > floor]
    return _claim(broker, source, group, me, held[:count])


def claim_lost(broker: MemoryBroker, source: str, group: str, me: str, ids: Sequence[str]) -> Claimed:
    """ms_claim_lost: those of ``ids`` still pending for ``me``, delivered again."""
    g = broker.stream(source).group(group)
    return _claim(broker, source, group, me, [i for i in map(parse_id, ids) if g.holds(me, i)])


def renew(broker: MemoryBroker, source: str, group: str, me: str, ids: Sequence[str]) -> list[str]:
    """ms_renew: reset the idle time of those ``ids`` still ``me``'s (XCLAIM JUSTID); return them."""
    stream = broker.stream(source)
    g = stream.group(group)
    mine = [i for i in map(parse_id, ids) if g.holds(me, i)]
    renewed = stream.claim(group, me, mine, broker.now_ms(), just_ids=True)
    broker.changed()
    return [format_id(i) for i, _ in renewed]


def promote(broker: MemoryBroker, stream: str, limit: int = 1000) -> int:
    """ms_promote: move the retries of ``stream`` due by now back into it, earliest first."""
    delayed = broker.delayed.get(stream, {})
    now = broker.now_ms()
    due = sorted((at, member) for member, at in delayed.items() if at <= now)[:limit]
    for _, member in due:
        broker.add(stream, [f.encode() for f in member])
        del delayed[member]
    if due:
        broker.changed()
    return len(due)


def trim(broker: MemoryBroker, stream: str) -> int:
    """ms_trim: drop the entries every group has acknowledged; a stream without groups stays whole."""
    found = broker.streams.get(stream)
    if found is None or not found.groups:
        return 0
    floor = min(min(g.pending) if g.pending else (g.last_delivered[0], g.last_delivered[1] + 1)
                for g in found.groups.values())
    removed = found.trim_below(floor)
    if removed:
        broker.changed()
    return removed
