"""Dead letters: list, show, replay and purge, as a Python API (the CLI and admin API call it).

Each stage has its own dead-letter stream (``Keys.dlq``); an entry keeps the
original fields and adds its provenance (source stream, group, entry id,
deliveries, attempts, reason, last error, consumer, time). Replays and purges
run in batches through ``ms_replay`` / ``ms_purge``: each batch is atomic,
moves or deletes only letters still present (so running a replay twice, or two
operators at once, enqueues each letter once), and writes an audit entry.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import WatchError

from streams.codec import envelope
from streams.errors import StreamsError
from streams.merge_patch import merge_patch
from streams.redis.keys import Keys
from streams.redis.library import fcall
from streams.settings import Settings

Progress = Callable[[int], None]
BATCH = 200


def _text(fields: Mapping[bytes, bytes], name: str, default: str = "") -> str:
    value = fields.get(name.encode())
    return value.decode(errors="replace") if value is not None else default


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    stage: str
    request_id: str
    reason: str
    last_error: str
    deliveries: int
    attempts: int
    source: str
    group: str
    consumer: str
    dead_at: float
    payload: dict[str, Any] | None
    errors: list[str]
    fields: dict[str, str] = field(repr=False)

    @classmethod
    def parse(cls, stage: str, entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> DeadLetter:
        ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        try:
            payload = orjson.loads(fields[b"d"]) if b"d" in fields else None
        except orjson.JSONDecodeError:
            payload = None
        return cls(
            id=ident, stage=stage, request_id=_text(fields, "rid"), reason=_text(fields, "reason"),
            last_error=_text(fields, "last_error"), deliveries=int(_text(fields, "deliveries", "0")),
            attempts=int(_text(fields, "attempts", "0")), source=_text(fields, "source"),
            group=_text(fields, "group"), consumer=_text(fields, "consumer"),
            dead_at=int(ident.split("-")[0]) / 1000,
            payload=payload if isinstance(payload, dict) else None,
            errors=orjson.loads(fields.get(b"errs", b"[]")),
            fields={k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()},
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters an operation applies to; None means any."""

    stage: str | None = None
    reason: str | None = None
    since: float | None = None
    until: float | None = None
    request_id: str | None = None
    ids: frozenset[str] | None = None  # only these letters (dead-letter ids)

    def __post_init__(self) -> None:
        if self.reason is not None:
            try:
                re.compile(self.reason)
            except re.error as error:
                problem = f"--reason {self.reason!r} is not a valid regular expression: {error}"
                raise StreamsError(problem) from None

    def matches(self, letter: DeadLetter) -> bool:
        return (self.ids is None or letter.id in self.ids) and (
            self.request_id is None or letter.request_id == self.request_id) and (
            self.reason is None or re.search(self.reason, letter.reason) is not None
        )

    def bounds(self) -> tuple[str, str]:
        """XRANGE bounds from the time window: a DLQ entry id is the time it died."""
        low = f"{int(self.since * 1000)}-0" if self.since is not None else "-"
        high = f"{int(self.until * 1000)}-18446744073709551615" if self.until is not None else "+"
        return low, high

    def describe(self) -> dict[str, Any]:
        found = {k: v for k, v in asdict(self).items() if v is not None}
        if self.ids is not None:
            found["ids"] = sorted(self.ids)
        return found


@dataclass(frozen=True, slots=True)
class Page:
    letters: list[DeadLetter]
    total: int
    next_cursor: str | None


@dataclass(slots=True)
class Report:
    """What a replay or purge did (or, in a dry run, would do)."""

    matched: int = 0
    done: int = 0
    gone: int = 0
    skipped: list[str] = field(default_factory=list)
    targets: dict[str, int] = field(default_factory=dict)


class DeadLetters:
    def __init__(self, redis: Redis, keys: Keys, settings: Settings) -> None:
        self.redis, self.keys, self.settings = redis, keys, settings

    async def stages(self) -> list[str]:
        prefix = self.keys.dlq("x")[:-1]
        found = [key.decode()[len(prefix):] async for key in
                 self.redis.scan_iter(match=f"{prefix}*", _type="STREAM", count=1000)]
        return sorted(found)

    async def select(self, selection: Selection, after: str | None = None) -> AsyncIterator[DeadLetter]:
        """Matching letters in (stage, id) order, starting after cursor ``after`` ("stage/id")."""
        after_stage, _, after_id = (after or "").partition("/")
        low, high = selection.bounds()
        for stage in await self.stages():
            if (selection.stage and stage != selection.stage) or stage < after_stage:
                continue
            start = f"({after_id}" if stage == after_stage and after_id else low
            while True:
                entries: Any = await self.redis.xrange(self.keys.dlq(stage), min=start, max=high, count=BATCH)
                for entry_id, fields in entries:
                    letter = DeadLetter.parse(stage, entry_id, fields)
                    if selection.matches(letter):
                        yield letter
                if len(entries) < BATCH:
                    break
                start = f"({entries[-1][0].decode()}"

    async def page(self, selection: Selection, limit: int = 50, after: str | None = None) -> Page:
        """One page of matches, the count of all matches from the cursor on, and the next cursor."""
        letters: list[DeadLetter] = []
        total = 0
        async for letter in self.select(selection, after):
            total += 1
            if len(letters) < limit:
                letters.append(letter)
        more = total > len(letters)
        cursor = f"{letters[-1].stage}/{letters[-1].id}" if more and letters else None
        return Page(letters, total, cursor)

    async def get(self, dlq_id: str) -> DeadLetter | None:
        for stage in await self.stages():
            entries: Any = await self.redis.xrange(self.keys.dlq(stage), min=dlq_id, max=dlq_id)
            if entries:
                return DeadLetter.parse(stage, entries[0][0], entries[0][1])
        return None

    async def source_of(self, stage: str) -> str:
        """The stream a stage reads: the stream of this pipeline with a group of that name."""
        prefix = self.keys.stream("x")[:-1]
        async for key in self.redis.scan_iter(match=f"{prefix}*", _type="STREAM", count=1000):
            groups = await self.redis.xinfo_groups(key)
            if any(g["name"] in (stage, stage.encode()) for g in groups):
                return str(key.decode())
        raise StreamsError(f"no stream of pipeline {self.keys.pipeline!r} has a consumer group {stage!r}")

    async def replay(self, selection: Selection, *, to_stage: str | None = None,
                     patch: Any = None, dry_run: bool = False, rate: float | None = None,
                     limit: int | None = None, progress: Progress | None = None) -> Report:
        """Put matching dead letters back into their source stream (or ``to_stage``'s)."""
        target = await self.source_of(to_stage) if to_stage else None
        detail = self._detail("replay", selection, to_stage=to_stage, edit=patch)
        size = max(1, min(BATCH, int(rate or BATCH)))
        report, batch = Report(), list[DeadLetter]()
        started = time.monotonic()
        async for letter in self.select(selection):
            if limit is not None and report.matched >= limit:
                break
            report.matched += 1
            if letter.payload is None:
                report.skipped.append(letter.id)
                continue
            if batch and (len(batch) >= size or batch[0].stage != letter.stage):
                await self._replay_batch(batch, target, patch, detail, report, dry_run, progress)
                await self._pace(report.matched, rate, started)
                batch = []
            batch.append(letter)
        await self._replay_batch(batch, target, patch, detail, report, dry_run, progress)
        return report

    async def _replay_batch(self, batch: list[DeadLetter], target: str | None, patch: Any, detail: bytes,
                            report: Report, dry_run: bool, progress: Progress | None) -> None:
        """Replay letters of one stage in one atomic call."""
        if not batch:
            return
        targets = [target or letter.source for letter in batch]
        for t in targets:
            report.targets[t] = report.targets.get(t, 0) + 1
        if dry_run:
            report.done += len(batch)
        else:
            spec = [[letter.id, letter.request_id, self._fields(letter, patch)] for letter in batch]
            keys = [self.keys.dlq(batch[0].stage), self.keys.events, self.keys.audit, *targets]
            moved = await fcall(self.redis, "ms_replay", keys, [
                int(time.time() * 1000), int(self.settings.status_ttl * 1000), self.settings.events_maxlen,
                self.keys.status_prefix, detail, orjson.dumps(spec),
            ])
            report.done += len(moved)
            report.gone += len(batch) - len(moved)
        if progress:
            progress(len(batch))

    def _fields(self, letter: DeadLetter, patch: Any) -> list[str]:
        payload = merge_patch(letter.payload, patch) if patch is not None else letter.payload
        if not isinstance(payload, dict):
            raise StreamsError("--edit must leave the payload a JSON object")
        origin = int(letter.fields.get("t0", "0") or 0)
        return [*envelope(orjson.dumps(payload), letter.request_id, 1, origin), "replayed_from", letter.id]

    async def purge(self, selection: Selection, *, limit: int | None = None, dry_run: bool = False,
                    progress: Progress | None = None) -> Report:
        """Delete matching dead letters (with an audit entry per batch)."""
        detail = self._detail("purge", selection)
        report = Report()
        pending: dict[str, list[str]] = {}
        async for letter in self.select(selection):
            if limit is not None and report.matched >= limit:
                break
            report.matched += 1
            pending.setdefault(letter.stage, []).append(letter.id)
        for stage, ids in pending.items():
            for i in range(0, len(ids), BATCH):
                chunk = ids[i:i + BATCH]
                removed = len(chunk) if dry_run else int(await fcall(
                    self.redis, "ms_purge", [self.keys.dlq(stage), self.keys.audit],
                    [int(time.time() * 1000), detail, *chunk]))
                report.done += removed
                report.gone += len(chunk) - removed
                if progress:
                    progress(len(chunk))
        return report

    async def edit(self, stage: str, dlq_id: str, patch: Any) -> DeadLetter | None:
        """Apply JSON merge patch ``patch`` to a letter's payload; None if the letter is gone.

        The edited letter is filed again (a new id: stream ids only grow) with
        ``edited_from``; the old one is deleted, and an audit entry written, in
        one transaction that fails over if the letter moved meanwhile.
        """
        key = self.keys.dlq(stage)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    found: Any = await pipe.xrange(key, min=dlq_id, max=dlq_id)
                    if not found:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return None
                    letter = DeadLetter.parse(stage, found[0][0], found[0][1])
                    payload = merge_patch(letter.payload, patch) if letter.payload is not None else None
                    if not isinstance(payload, dict):
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        raise StreamsError("the payload must stay a JSON object (and be decodable to edit)")
                    fields = {**found[0][1], b"d": orjson.dumps(payload), b"edited_from": dlq_id.encode()}
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.xadd(key, fields)
                    pipe.xdel(key, dlq_id)
                    pipe.xadd(self.keys.audit, {"action": "edit", "at": int(time.time() * 1000),
                                                "detail": self._detail("edit", Selection(stage), edit=patch),
                                                "count": 1, "ids": orjson.dumps([dlq_id])})
                    new_id = (await pipe.execute())[0]
                    return DeadLetter.parse(stage, new_id, fields)
                except WatchError:  # replayed, purged or edited meanwhile: look again
                    continue

    async def apply_retention(self, stage: str) -> int:
        """Trim a stage's DLQ by age and count as configured (0 keeps everything)."""
        key, removed = self.keys.dlq(stage), 0
        if self.settings.dlq_max_age:
            floor = int((time.time() - self.settings.dlq_max_age) * 1000)
            removed += int(await self.redis.xtrim(key, minid=f"{floor}-0", approximate=False))
        if self.settings.dlq_max_len:
            removed += int(await self.redis.xtrim(key, maxlen=self.settings.dlq_max_len, approximate=False))
        return removed

    async def audit(self, count: int = 20) -> list[dict[str, Any]]:
        """The latest audit entries, newest first."""
        entries: Any = await self.redis.xrevrange(self.keys.audit, count=count)
        return [{"id": i.decode(), **{k.decode(): v.decode() for k, v in f.items()}} for i, f in entries]

    def _detail(self, action: str, selection: Selection, **extra: Any) -> bytes:
        return orjson.dumps({
            "operation": uuid.uuid4().hex, "action": action, "operator": self.settings.operator,
            "selection": selection.describe(), **{k: v for k, v in extra.items() if v is not None},
        })

    @staticmethod
    async def _pace(done: int, rate: float | None, started: float) -> None:
        if rate:
            ahead = done / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
