"""Building and committing transitions: one FCALL ms_commit per batch.

A transition says what happens to one source entry: the XADDs, ZADDs and
RPUSHes it causes, and the state recorded in the task's status record and the
events stream. ``Committer.commit`` applies a batch atomically; an entry that
is no longer pending for this consumer is skipped whole (fencing), and
reported so.

Fencing is checked per entry only where it can fail: for entries read before
the consumer's fence token last changed, or for all of them when the token
changed since (functions/millstream.lua, docs/decisions/0010-fence-tokens.md).

The batch is packed into RESP here, an entry at a time (resp.py): flat
arguments cost Redis nothing to parse, where a JSON blob cost it a cjson
decode of 3 µs per entry. The one blob sent, the event's list of transitions,
is stored as it is: Redis never decodes it (unless entries were fenced off).

A batch whose packed entries exceed ``max_call_bytes`` is sent as several calls, each
within that budget (or one transition alone): a call holds Redis about 1.5 ms per MiB
it writes, and a batch of large payloads or error records must not hold it for tens of
ms. Entries are independent, so the calls need not be one: each is fenced on its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from streams.redis import library, resp
from streams.redis.keys import Keys

REPLY_TIMEOUT = 30.0  # seconds: a reply lost in a Redis restart must not hang a commit
MAX_CALL_BYTES = 512 * 1024  # packed entries per ms_commit call, beyond which a batch is split


class Envelope(NamedTuple):
    """XADD of a first-attempt envelope (streams.codec) carrying ``data``."""

    key: str
    data: bytes
    request_id: str
    origin_ms: int


class Xadd(NamedTuple):
    key: str
    fields: Sequence[str | bytes]


class Zadd(NamedTuple):
    key: str
    score: int
    member: str


class Rpush(NamedTuple):
    key: str
    value: str | bytes


Op = Envelope | Xadd | Zadd | Rpush


class Transition(NamedTuple):
    entry_id: str
    request_id: str
    state: str
    ops: Sequence[Op]


class Verdict(NamedTuple):
    """What a commit did: the consumer's current fence token, and the entries fenced off."""

    token: str
    fenced: list[int]


_cache: dict[str | int, bytes] = {}


def _small(value: str | int) -> bytes:
    """The packed bulk of a value from a small set (states, op codes, counts, key numbers)."""
    packed = _cache.get(value)
    if packed is None:
        packed = _cache[value] = resp.bulk(str(value).encode())
    return packed


def _text(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class _KeyList:
    """KEYS of one call, each key once; ``index`` gives its 1-based position."""

    def __init__(self, *fixed: str) -> None:
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        for key in fixed:
            self.index(key)

    def index(self, key: str) -> int:
        found = self._index.get(key)
        if found is None:
            self.keys.append(key)
            found = self._index[key] = len(self.keys)
        return found


def _pack_op(op: Op, keys: _KeyList, out: list[bytes]) -> int:
    """Append the packed arguments of ``op``; return how many."""
    where = _small(keys.index(op.key))
    if type(op) is Envelope:
        rid, origin = op.request_id.encode(), b"%d" % op.origin_ms
        out.append(b"$1\r\ne\r\n%b$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
            where, len(op.data), op.data, len(rid), rid, len(origin), origin))
        return 5
    if type(op) is Xadd:
        out += (b"$1\r\nx\r\n", where, _small(len(op.fields)))
        out += [resp.bulk(_text(f)) for f in op.fields]
        return 3 + len(op.fields)
    if type(op) is Rpush:
        out += (b"$1\r\nl\r\n", where, resp.bulk(_text(op.value)))
        return 3
    assert type(op) is Zadd
    out += (b"$1\r\nz\r\n", where, resp.bulk(b"%d" % op.score), resp.bulk(op.member.encode()))
    return 4


def _forward(t: Transition) -> Envelope | None:
    """The envelope of the common case: ``t`` forwards one envelope under its own request id."""
    ops = t.ops
    if (len(ops) == 1 and type(op := ops[0]) is Envelope and t.state == "forwarded"
            and op.request_id == t.request_id):
        return op
    return None


def _pack_run(run: list[bytes], key_index: int, out: list[bytes]) -> int:
    out += (b"$1\r\nF\r\n", _small(key_index), _small(len(run)), *run)
    return 3 + 4 * len(run)


def _pack_entries(batch: Sequence[Transition], keys: _KeyList) -> tuple[list[bytes], int]:
    """The packed entries of ``batch`` (see ms_commit), and how many arguments they are.

    Consecutive forwards to one stream go in a run, four arguments per entry.
    """
    body: list[bytes] = []
    count = 0
    run: list[bytes] = []  # packed entries of the run of forwards to ``sink``
    sink = ""
    for t in batch:
        entry, rid = t.entry_id.encode(), t.request_id.encode()
        if forward := _forward(t):
            if forward.key != sink and run:
                count += _pack_run(run, keys.index(sink), body)
                run = []
            sink, data, origin = forward.key, forward.data, b"%d" % forward.origin_ms
            run.append(b"$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
                len(entry), entry, len(rid), rid, len(data), data, len(origin), origin))
            continue
        if run:
            count += _pack_run(run, keys.index(sink), body)
            run = []
        body.append(b"%b%b%b%b" % (resp.bulk(entry), resp.bulk(rid), _small(t.state), _small(len(t.ops))))
        count += 4
        for op in t.ops:
            count += _pack_op(op, keys, body)
    if run:
        count += _pack_run(run, keys.index(sink), body)
    return body, count


@dataclass(frozen=True, slots=True)
class Committer:
    """Commits transitions of entries read by ``consumer`` of ``group`` from ``source``."""

    redis: Redis
    keys: Keys
    source: str
    group: str
    consumer: str
    stage: str
    status_ttl_ms: int
    events_maxlen: int
    max_held: int
    max_call_bytes: int = MAX_CALL_BYTES
    _idle: list[resp.Channel] = field(default_factory=list)  # one per commit in flight, reused

    async def token(self) -> str:
        """This consumer's current fence token ("" before anything was ever taken from it)."""
        found = await self.redis.hget(self.keys.fences, f"{self.source}/{self.group}/{self.consumer}")
        return _text(found).decode() if found else ""

    async def commit(self, batch: Sequence[Transition], token: str, suspect: Sequence[int] = (),
                     *, split: bool = True) -> Verdict:
        """Apply ``batch`` atomically.

        ``token`` is the fence token known before the entries were read, except
        for the entries numbered ``suspect`` (0-based), read under an older one.
        A batch over ``max_call_bytes`` is sent in parts (``split``); a part is
        never split again, since its estimate may be a few bytes short.
        """
        keys = _KeyList(self.source, self.keys.events, self.keys.fences)
        body, count = _pack_entries(batch, keys)
        if split and len(batch) > 1 and sum(map(len, body)) > self.max_call_bytes:
            return await self._commit_in_parts(batch, token, suspect)
        head = [
            b"FCALL", b"ms_commit", b"%d" % len(keys.keys), *[k.encode() for k in keys.keys],
            self.group.encode(), self.consumer.encode(), b"%d" % int(time.time() * 1000),
            b"%d" % self.status_ttl_ms, b"%d" % self.events_maxlen, self.stage.encode(),
            self.keys.status_prefix.encode(), token.encode(), b"%d" % (self.max_held + len(batch)),
            orjson.dumps([(t.request_id, t.state, t.entry_id) for t in batch]),
            b"%d" % len(suspect), *[b"%d" % (i + 1) for i in suspect],
        ]
        packed = resp.command(len(head) + count, [*map(resp.bulk, head), *body])
        channel = self._idle.pop() if self._idle else resp.Channel(self.redis)
        try:
            reply = await channel.call(packed, REPLY_TIMEOUT)
        except ResponseError as error:
            if "Function not found" not in str(error):
                raise
            await library.load(self.redis)
            reply = await channel.call(packed, REPLY_TIMEOUT)
        finally:
            self._idle.append(channel)
        return Verdict(reply[0].decode(), [i - 1 for i in reply[1:]])

    async def _commit_in_parts(self, batch: Sequence[Transition], token: str,
                               suspect: Sequence[int]) -> Verdict:
        """``commit`` of a batch too large for one call, in consecutive parts within the budget."""
        fenced: list[int] = []
        current = token
        for start, end in self._parts(batch):
            part_suspect = [i - start for i in suspect if start <= i < end]
            verdict = await self.commit(batch[start:end], token, part_suspect, split=False)
            fenced += [start + i for i in verdict.fenced]
            current = verdict.token
        return Verdict(current, fenced)

    def _parts(self, batch: Sequence[Transition]) -> list[tuple[int, int]]:
        """(start, end) of consecutive parts, each within the budget or a single transition."""
        parts, start, size = [], 0, 0
        for i, t in enumerate(batch):
            packed = sum(map(len, _pack_entries([t], _KeyList())[0]))
            if i > start and size + packed > self.max_call_bytes:
                parts.append((start, i))
                start, size = i, 0
            size += packed
        parts.append((start, len(batch)))
        return parts

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()
