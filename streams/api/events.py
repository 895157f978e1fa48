"""Live events over SSE, read from the pipeline's events stream by one reader per app.

The events stream has one entry per commit listing its transitions
(``[request_id, state, entry]``, functions/millstream.lua ``add_event``), and
one per pause or resume (streams.redis.control). One hub task tails it with
XREAD into one ring of the last ``api_sse_queue`` events; each client keeps
only its position in it. A client that falls further behind than the ring
holds is told so (event ``overflow``) and dropped, so a slow or vanished
client costs the others nothing and memory does not grow with clients. A
client reconnecting with ``Last-Event-ID`` first gets what it missed from the
stream (as far as the stream still holds it), then the live events, without
gaps or repeats: it subscribes before it reads
the backlog and skips live events the backlog already had.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from streams.api import views
from streams.api.auth import ROUTE_RESPONSES, context, reader
from streams.redis.tasks import task_status

log = logging.getLogger("millstream.api.events")
router = APIRouter(prefix="/v1", tags=["events"], responses=ROUTE_RESPONSES)
BACKLOG = 10_000  # events stream entries read for one resuming client, at most
READ_BLOCK_MS = 1000
_EVENT_ID = re.compile(r"^(\d{1,20}-\d{1,20})(?:\.(\d{1,6}))?$")
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


@dataclass(frozen=True, slots=True)
class Event:
    id: str | None
    name: str
    data: dict[str, Any]
    request_id: str | None = None
    final: bool = False

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id else ""
        return f"{head}event: {self.name}\n".encode() + b"data: " + orjson.dumps(self.data) + b"\n\n"


def _text(value: bytes | None) -> str:
    return value.decode(errors="replace") if value is not None else ""


NAMES = {"completed": "job-completed", "failed": "job-failed", "cancelled": "job-failed",
         None: "job-progress"}
NO_ENDS = views.Ends()


def translate(entry_id: str, fields: dict[bytes, bytes], ends: views.Ends = NO_ENDS) -> Iterator[Event]:
    """The SSE events of one events-stream entry; ids ``<entry>.<n>`` order them for resuming."""
    stage, at = _text(fields.get(b"stage")), _text(fields.get(b"at"))
    when = int(at) if at.isdigit() else int(entry_id.split("-")[0])
    control = fields.get(b"control")
    if control == b"cancelled":  # a cancel (streams.redis.control); the task ends when a stage commits it
        rid = _text(fields.get(b"request_id"))
        yield Event(f"{entry_id}.0", "task-cancel-requested", {"jobId": rid, "by": _text(fields.get(b"by")),
                                                               "at": when}, rid)
        return
    if control is not None:
        name = "stage-paused" if control == b"paused" else "stage-resumed"
        yield Event(f"{entry_id}.0", name, {"stage": stage, "by": _text(fields.get(b"by")), "at": when})
        return
    try:
        transitions = orjson.loads(fields.get(b"t", b"[]"))
    except orjson.JSONDecodeError:
        return
    for n, t in enumerate(transitions if isinstance(transitions, list) else []):
        if not (isinstance(t, list) and len(t) >= 3):
            continue
        rid, state, entry = str(t[0]), str(t[1]), str(t[2])
        result = ends.outcome(stage, state)
        data = {"jobId": rid, "stage": stage, "state": state, "entry": entry, "at": when, "result": result}
        yield Event(f"{entry_id}.{n}", NAMES[result], data, rid, result is not None)


class Overflow(Exception):
    """The client fell further behind than the hub keeps events."""


class Hub:
    """Tails the events stream once for every connected client, into one ring of recent events.

    Each client holds only its position in the ring: a slow client costs one
    integer, and one that falls behind the ring's start is dropped (Overflow).
    """

    def __init__(self, redis: Redis, key: str, size: int, ends: views.Ends = NO_ENDS) -> None:
        self.redis, self.key, self.ends = redis, key, ends
        self.ring: deque[Event] = deque(maxlen=size)
        self.next = 0  # the position the next event gets
        self.clients = 0
        self.last = ""  # the stream entry read last; "" while nobody listens
        self._generation = 0  # changes when the last client leaves: a read begun before is stale
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._anchoring = asyncio.Lock()  # clients joining at once look the stream's end up once

    async def join(self) -> int:
        """Count a client in; its position: it sees the entries added to the stream from now on."""
        self.clients += 1
        if not self.last:
            async with self._anchoring:
                if not self.last:
                    newest: Any = await self.redis.xrevrange(self.key, count=1)
                    self.last = _text(newest[0][0]) if newest else "0-0"
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._tail(), name="sse-hub")
        return self.next

    def leave(self) -> None:
        self.clients -= 1
        if not self.clients:
            self.last, self._generation = "", self._generation + 1

    def publish(self, events: list[Event]) -> None:
        if events:
            self.ring.extend(events)
            self.next += len(events)
            self._new.set()
            self._new = asyncio.Event()

    def since(self, position: int) -> list[Event]:
        """The events from ``position`` on (Overflow if the ring no longer has them)."""
        first = self.next - len(self.ring)
        if position < first:
            raise Overflow
        return list(itertools.islice(self.ring, position - first, None))

    async def wait(self, position: int, seconds: float) -> bool:
        """Wait up to ``seconds`` for events past ``position``; whether there are some."""
        if position < self.next:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._new.wait(), seconds)
        return position < self.next

    async def _tail(self) -> None:
        while True:
            if not self.last:  # nobody listens: the next client to join sets where reading starts
                await asyncio.sleep(0.05)
                continue
            generation = self._generation
            try:
                found: Any = await self.redis.xread({self.key: self.last}, count=500, block=READ_BLOCK_MS)
            except RedisError as error:
                log.warning("reading the events stream failed: %s; retrying in 1 s", error)
                await asyncio.sleep(1)
                continue
            if generation != self._generation:
                continue  # everyone left while it read: the next client starts afresh
            for _, entries in found or []:
                for entry_id, fields in entries:
                    self.last = _text(entry_id)
                    self.publish(list(translate(self.last, fields, self.ends)))

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _backlog(redis: Redis, key: str, last_event_id: str, wants: Callable[[Event], bool],
                   ends: views.Ends) -> list[Event]:
    """Events after ``last_event_id`` still in the stream (at most BACKLOG entries)."""
    match = _EVENT_ID.match(last_event_id)
    if not match:
        return []
    entry, n = match.group(1), int(match.group(2) or -1)
    found: Any = await redis.xrange(key, min=entry, count=BACKLOG)
    events = []
    for entry_id, fields in found:
        for event in translate(_text(entry_id), fields, ends):
            if _text(entry_id) == entry and int((event.id or ".0").rsplit(".", 1)[1]) <= n:
                continue
            if wants(event):
                events.append(event)
    return events


def _order(event_id: str | None) -> tuple[int, int, int]:
    if not event_id or not (match := _EVENT_ID.match(event_id)):
        return (0, 0, -1)
    ms, seq = match.group(1).split("-")
    return (int(ms), int(seq), int(match.group(2) or 0))


async def stream(request: Request, wants: Callable[[Event], bool], last_event_id: str | None,
                 first: list[Event], *, stop_after_final: bool = False,
                 stats: bool = False) -> AsyncIterator[bytes]:
    """The SSE body: ``first``, what the client missed, then live events, each batch in one write;
    a heartbeat comment when idle, and queue-stats every stats interval when ``stats``."""
    ctx = context(request)
    hub: Hub = request.app.state.hub
    loop = asyncio.get_running_loop()
    position = await hub.join()
    try:
        chunk = b"".join(event.encode() for event in first)
        seen = (0, 0, -1)
        if last_event_id:
            for event in await _backlog(ctx.redis, ctx.keys.events, last_event_id, wants, ctx.ends):
                seen = max(seen, _order(event.id))
                chunk += event.encode()
                if stop_after_final and event.final:
                    yield chunk
                    return
        if chunk:
            yield chunk
        stats_due = loop.time()
        heartbeat_due = loop.time() + ctx.api.api_sse_heartbeat
        while True:
            if stats and loop.time() >= stats_due:
                yield Event(None, "queue-stats", await request.app.state.figures.get()).encode()
                stats_due = loop.time() + ctx.api.api_stats_interval
            wait = min(heartbeat_due, stats_due if stats else heartbeat_due) - loop.time()
            if not await hub.wait(position, max(0.0, wait)):
                if loop.time() >= heartbeat_due:
                    if await request.is_disconnected():
                        return
                    heartbeat_due = loop.time() + ctx.api.api_sse_heartbeat
                    yield b": heartbeat\n\n"
                continue
            try:
                events = hub.since(position)
            except Overflow:
                yield Event(None, "overflow", {"detail": "this client fell behind and was dropped: reconnect "
                                                         "with Last-Event-ID to resume"}).encode()
                return
            position += len(events)
            chunk, ended = b"", False
            for event in events:
                if not wants(event) or (event.id and _order(event.id) <= seen):
                    continue
                chunk += event.encode()
                if stop_after_final and event.final:
                    ended = True
                    break
            if chunk:
                heartbeat_due = loop.time() + ctx.api.api_sse_heartbeat
                yield chunk
            if ended:
                return
    finally:
        hub.leave()


LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=60)]


@router.get("/events", dependencies=[Depends(reader)], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(request: Request, last_event_id: LastEventId = None) -> StreamingResponse:
    """Every event of the pipeline: job-progress, job-completed, job-failed, stage-paused, stage-resumed,
    and queue-stats every ``MILLSTREAM_API_STATS_INTERVAL`` seconds."""
    body = stream(request, lambda _: True, last_event_id, [], stats=True)
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)


@router.get("/tasks/{request_id}/events", dependencies=[Depends(reader)], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def task_events(request: Request, request_id: Annotated[str, Path(max_length=256)],
                      last_event_id: LastEventId = None) -> StreamingResponse:
    """One task's events: first its current state (event ``task``), then each transition until it ends."""
    ctx = context(request)
    record = await task_status(ctx.redis, ctx.keys, request_id, ctx.status_ttl)
    view = views.task(request_id, record, ctx.ends) if record else None
    first = [Event(None, "task", view)] if view else []

    async def ended() -> AsyncIterator[bytes]:
        for event in first:
            yield event.encode()

    if view and view["final"] and not last_event_id:
        return StreamingResponse(ended(), media_type="text/event-stream", headers=HEADERS)
    body = stream(request, lambda e: e.request_id == request_id, last_event_id, first,
                  stop_after_final=True)
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)
