"""Committing transitions on Redis: each batch packed for one FCALL ms_commit.

A transition (streams.transition) says what happens to one source entry: the
writes it causes, and the state recorded in the task's status record and the
events stream. Here, and only here, its ops become ms_commit's arguments: each
op's logical name becomes its key (streams.redis.keys), a Forward or an
ErrorRecord an envelope XADD, a Delay a ZADD of the delayed set, a DeadLetter
or an Append an XADD, a ListPush an RPUSH. ``Committer.commit`` applies a batch
atomically; an entry that is no longer pending for this consumer is skipped
whole (fencing), and reported so.

Fencing is checked per entry only where it can fail: for entries read before
the consumer's fence token last changed, or for all of them when the token
changed since (functions/millstream.lua, docs/decisions/0010-fence-tokens.md).

The batch is packed into RESP here, an entry at a time (resp.py): flat
arguments cost Redis nothing to parse, where a JSON blob cost it a cjson
decode of 3 µs per entry. The one blob sent, the event's list of transitions,
is stored as it is: Redis never decodes it (unless entries were fenced off).

A transition with a detail (streams.transition) is packed with a 'D' and the detail
before its entry; such a transition is never part of a run of plain forwards, so the
common case packs as before. The detail is spliced into the status value as text, so
it is checked here to be a JSON object and spaced where it would hold one of the two
markers the Lua finds trails and records by (`,"trail":[` and `{"stage":"`).

A batch whose packed entries exceed ``max_call_bytes`` is sent as several calls, each
within that budget (or one transition alone): a call holds Redis about 1.5 ms per MiB
it writes, and a batch of large payloads or error records must not hold it for tens of
ms. Entries are independent, so the calls need not be one: each is fenced on its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from streams.redis import library, resp
from streams.redis.keys import ERRORS, Keys
from streams.transition import (
    Append,
    DeadLetter,
    Delay,
    ErrorRecord,
    Forward,
    ListPush,
    Op,
    State,
    Transition,
    Verdict,
    bounded_detail,
)

REPLY_TIMEOUT = 30.0  # seconds: a reply lost in a Redis restart must not hang a commit
MAX_CALL_BYTES = 512 * 1024  # packed entries per ms_commit call, beyond which a batch is split
MAX_CACHED_NAMES = 1024  # keys of logical names remembered per committer


FORWARDED = State.FORWARDED  # looked up once: an enum member's lookup costs 50 ns per entry
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


class _Addresses:
    """The keys of the logical names ops carry, each computed once (Keys checks every name).

    At most MAX_CACHED_NAMES of each kind are kept: a processor may take stream
    names from its input, and they must not grow a worker's memory.
    """

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self._streams: dict[str, str] = {}
        self._dlqs: dict[str, str] = {}

    def stream(self, name: str) -> str:
        return self._streams.get(name) or _remember(self._streams, name, self.keys.stream(name))

    def dlq(self, stage: str) -> str:
        return self._dlqs.get(stage) or _remember(self._dlqs, stage, self.keys.dlq(stage))

    @property
    def errors(self) -> str:
        return self.stream(ERRORS)


def _remember(cache: dict[str, str], name: str, key: str) -> str:
    if len(cache) < MAX_CACHED_NAMES:
        cache[name] = key
    return key


def _envelope(where: bytes, data: bytes, request_id: str, origin_ms: int) -> bytes:
    """The packed 'e' op: XADD of a first-attempt envelope (streams.codec)."""
    rid, origin = request_id.encode(), b"%d" % origin_ms
    return b"$1\r\ne\r\n%b$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
        where, len(data), data, len(rid), rid, len(origin), origin)


def _xadd(where: bytes, fields: Sequence[str | bytes], out: list[bytes]) -> int:
    out += (b"$1\r\nx\r\n", where, _small(len(fields)))
    out += [resp.bulk(_text(f)) for f in fields]
    return 3 + len(fields)


def _pack_op(op: Op, names: _Addresses, keys: _KeyList, out: list[bytes]) -> int:
    """Append the packed arguments of ``op``; return how many."""
    if type(op) is Forward:
        where = _small(keys.index(names.stream(op.stream)))
        out.append(_envelope(where, op.data, op.request_id, op.origin_ms))
        return 5
    if type(op) is ErrorRecord:
        out.append(_envelope(_small(keys.index(names.errors)), op.data, op.request_id, op.origin_ms))
        return 5
    if type(op) is Append:
        return _xadd(_small(keys.index(names.stream(op.stream))), op.fields, out)
    if type(op) is DeadLetter:
        return _xadd(_small(keys.index(names.dlq(op.stage))), op.fields, out)
    if type(op) is ListPush:
        out += (b"$1\r\nl\r\n", _small(keys.index(op.list)), resp.bulk(op.value))
        return 3
    assert type(op) is Delay
    where = _small(keys.index(names.keys.delayed(op.stream)))
    out += (b"$1\r\nz\r\n", where, resp.bulk(b"%d" % op.due_ms), resp.bulk(orjson.dumps(op.fields)))
    return 4


def _forward(t: Transition) -> Forward | None:
    """The op of the common case: ``t`` forwards one envelope under its own request id, no detail."""
    ops = t.ops
    if (len(ops) == 1 and type(op := ops[0]) is Forward and t.state is FORWARDED
            and op.request_id == t.request_id and not t.detail):
        return op
    return None


def spliceable(detail: bytes) -> bytes:
    """``detail`` bounded (streams.transition.bounded_detail) and free of the Lua's markers.

    Only a key "trail" holding a list or an object whose first key is "stage" holding a
    string make those bytes in JSON (inside a string a quote is escaped): a blank after
    the colon keeps the value and breaks the marker.
    """
    text = bounded_detail(detail)
    return text.replace(b',"trail":[', b',"trail": [').replace(b'{"stage":"', b'{"stage": "')


def _pack_run(run: list[bytes], key_index: int, out: list[bytes]) -> int:
    out += (b"$1\r\nF\r\n", _small(key_index), _small(len(run)), *run)
    return 3 + 4 * len(run)


def _pack_entries(batch: Sequence[Transition], names: _Addresses, keys: _KeyList) -> tuple[list[bytes], int]:
    """The packed entries of ``batch`` (see ms_commit), and how many arguments they are.

    Consecutive forwards to one stream go in a run, four arguments per entry.
    """
    body: list[bytes] = []
    count = 0
    run: list[bytes] = []  # packed entries of the run of forwards to ``sink``
    sink = sink_name = ""  # the run's key, and the logical name it was computed from
    for t in batch:
        entry, rid = t.entry_id.encode(), t.request_id.encode()
        if forward := _forward(t):
            if forward.stream != sink_name:
                if run:
                    count += _pack_run(run, keys.index(sink), body)
                    run = []
                sink_name, sink = forward.stream, names.stream(forward.stream)
            data, origin = forward.data, b"%d" % forward.origin_ms
            run.append(b"$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
                len(entry), entry, len(rid), rid, len(data), data, len(origin), origin))
            continue
        if run:
            count += _pack_run(run, keys.index(sink), body)
            run = []
        if t.detail:
            body.append(b"$1\r\nD\r\n%b" % resp.bulk(spliceable(t.detail)))
            count += 2
        body.append(b"%b%b%b%b" % (resp.bulk(entry), resp.bulk(rid), _small(t.state), _small(len(t.ops))))
        count += 4
        for op in t.ops:
            count += _pack_op(op, names, keys, body)
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
    _names: _Addresses = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", _Addresses(self.keys))

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
        keys = _KeyList(self.source, self.keys.events, self.keys.fences, self.keys.counts)
        body, count = _pack_entries(batch, self._names, keys)
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
            packed = sum(map(len, _pack_entries([t], self._names, _KeyList())[0]))
            if i > start and size + packed > self.max_call_bytes:
                parts.append((start, i))
                start, size = i, 0
            size += packed
        parts.append((start, len(batch)))
        return parts

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()
