"""Operators' routes: the pipeline, stage figures, running tasks, pause and resume, cleaning."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from streams.api import models
from streams.api.auth import ROUTE_RESPONSES, admin, context, reader
from streams.api.context import Context
from streams.api.views import FINAL
from streams.figures import GroupStats
from streams.redis import control, stats
from streams.redis import tasks as status_records
from streams.stage import Stage

router = APIRouter(prefix="/v1", tags=["operations"], responses=ROUTE_RESPONSES)
RUNNING_PER_STAGE = 500  # pending entries listed per stage by /v1/running
COMPLETED = ("forwarded", "done")
FAILED = ("failed", "dead_lettered")
StageName = Annotated[str, Path(max_length=200)]
_NO_GROUP = GroupStats("", 0, 0.0, 0, 0.0, 0, 0, 0.0, 0, 0.0)  # a stage whose group does not exist yet


class Figures:
    """Stage figures sampled at most once per ``every`` seconds, shared by requests and SSE clients.

    Throughput is the change of the completed count between two samples.
    """

    def __init__(self, ctx: Context, every: float) -> None:
        self.ctx, self.every = ctx, every
        self._last: dict[str, Any] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            if self._last is None or time.monotonic() - self._at >= self.every:
                before = self._last
                self._last, self._at = await self._sample(before), time.monotonic()
            return self._last

    async def _sample(self, before: dict[str, Any] | None) -> dict[str, Any]:
        ctx, now = self.ctx, int(time.time() * 1000)
        counts = await status_records.counts(ctx.redis, ctx.keys)
        paused = await control.paused(ctx.redis, ctx.keys)
        previous = {s["stage"]: s for s in before["stages"]} if before else {}
        figures = []
        sampled: dict[str, Any] = {}
        for stage in ctx.pipeline.stages:
            lanes = []  # (lane, waiting, its stream's figures, its group's), one lane unless by priority
            for lane in stage.lanes:
                if lane.source not in sampled:
                    sampled[lane.source] = await stats.sample(ctx.redis, ctx.keys, lane.source)
                stream = sampled[lane.source]
                group = next((g for g in stream.groups if g.group == lane.group), _NO_GROUP)
                lanes.append((lane, group.lag if group is not _NO_GROUP else stream.length, stream, group))
            groups = [group for *_, group in lanes]
            waiting = sum(w for _, w, _, _ in lanes)
            done = counts.get(stage.name, {})
            completed = sum(done.get(s, 0) for s in COMPLETED)
            last = previous.get(stage.name)
            seconds = (now - before["at"]) / 1000 if before else 0.0
            rate = (completed - last["completed"]) / seconds if last and seconds else None
            figures.append({
                "stage": stage.name, "stream": stage.source,
                "waiting": waiting, "active": sum(g.pending for g in groups),
                "completed": completed, "failed": sum(done.get(s, 0) for s in FAILED),
                "delayed": sum(s.delayed for _, _, s, _ in lanes), "dead": max(g.dlq_length for g in groups),
                "paused": stage.name in paused, "lag": waiting,
                "lag_seconds": max(g.lag_seconds for g in groups),
                "oldest_pending_seconds": max(g.oldest_pending_seconds for g in groups),
                "consumers": max(g.consumers for g in groups),
                "live_consumers": max(g.live_consumers for g in groups),
                "throughput": None if rate is None else round(rate, 3),
                "by_priority": {lane.level.label: w for lane, w, _, _ in lanes if lane.level} or None,
            })
        return {"pipeline": ctx.pipeline.name, "at": now, "stages": figures}


def _stage(ctx: Context, name: str) -> Stage:
    for stage in ctx.pipeline.stages:
        if stage.name == name:
            return stage
    raise HTTPException(404, f"no stage {name!r} (stages: {', '.join(s.name for s in ctx.pipeline.stages)})")


def _operator(request: Request) -> str:
    return f"api:{context(request).settings.operator}"


@router.get("/pipeline", response_model=models.PipelineInfo, dependencies=[Depends(reader)])
async def pipeline(request: Request) -> Any:
    """The pipeline's stages, the streams producers may publish to, and which stages are paused."""
    ctx = context(request)
    paused = await control.paused(ctx.redis, ctx.keys)
    return {"name": ctx.pipeline.name, "entry": ctx.pipeline.entry, "streams": list(ctx.ingest_streams),
            "auth": not ctx.api.open,
            "stages": [{"name": s.name, "source": s.source, "sinks": list(s.sinks), "group": s.group,
                        "paused": s.name in paused} for s in ctx.pipeline.stages]}


@router.get("/stats", response_model=models.Stats, dependencies=[Depends(reader)])
async def stage_stats(request: Request) -> Any:
    """Per stage: waiting, active, completed, failed, delayed, dead, paused, lag and throughput."""
    return await request.app.state.figures.get()


@router.get("/running", response_model=models.Running, dependencies=[Depends(reader)])
async def running(request: Request) -> Any:
    """Each task being handled now, with its consumer and elapsed time; queued tasks per stage."""
    ctx = context(request)
    now = time.time()
    found: list[dict[str, Any]] = []
    queued: dict[str, int] = {}
    for stage in [lane for s in ctx.pipeline.stages for lane in s.lanes]:  # a stage read by priority: 4
        key = ctx.keys.stream(stage.source)
        groups = await ctx.redis.xinfo_groups(key) if await ctx.redis.exists(key) else []
        group = next((g for g in groups if _name(g["name"]) == stage.group), None)
        lag = group.get("lag") if group else None
        waiting = lag if isinstance(lag, int) else 0 if group else int(await ctx.redis.xlen(key))
        queued[stage.name] = queued.get(stage.name, 0) + waiting
        if group is None:
            continue
        pending: Any = await ctx.redis.xpending_range(key, stage.group, min="-", max="+",
                                                      count=RUNNING_PER_STAGE)
        read_at = await _read_times(ctx, stage, {_name(p["consumer"]) for p in pending})
        pipe = ctx.redis.pipeline(transaction=False)
        for p in pending:
            pipe.xrange(key, min=p["message_id"], max=p["message_id"])
        for p, entry in zip(pending, await pipe.execute(), strict=True):
            entry_id, consumer = _name(p["message_id"]), _name(p["consumer"])
            # When the consumer read it, as its heartbeat reports; else the delivery's idle time,
            # which a lease renewal (after deadline / 2) resets.
            started = read_at.get((consumer, entry_id)) or now - int(p["time_since_delivered"]) / 1000
            found.append({
                "request_id": entry[0][1].get(b"rid", b"").decode(errors="replace") if entry else "",
                "stage": stage.name, "consumer": consumer, "entry": entry_id, "started_at": round(started, 3),
                "elapsed_seconds": round(max(0.0, now - started), 3), "deliveries": int(p["times_delivered"]),
            })
    return {"running": found, "queued": queued,
            "summary": {"running": len(found), "queued": sum(queued.values()), "stages": len(queued)}}


async def _read_times(ctx: Context, stage: Stage, consumers: set[str]) -> dict[tuple[str, str], float]:
    """(consumer, entry) -> when the consumer read it (unix s), from the consumers' heartbeat reports."""
    names = sorted(consumers)
    found = await ctx.redis.mget([ctx.keys.running(stage.group, c) for c in names]) if names else []
    times: dict[tuple[str, str], float] = {}
    for consumer, report in zip(names, found, strict=True):
        try:
            held = orjson.loads(report) if report else {}
        except orjson.JSONDecodeError:
            continue
        if isinstance(held, dict):
            times.update({(consumer, str(e)): at / 1000 for e, at in held.items() if isinstance(at, int)})
    return times


def _name(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


@router.post("/stages/{stage}/pause", response_model=models.PauseState, dependencies=[Depends(admin)],
             responses={404: {"model": models.Message}})
async def pause(request: Request, stage: StageName) -> Any:
    """Pause a stage on every worker (persisted in Redis): its workers stop reading within about a second."""
    ctx = context(request)
    _stage(ctx, stage)
    return await control.pause(ctx.redis, ctx.keys, stage, _operator(request), ctx.settings.events_maxlen)


@router.post("/stages/{stage}/resume", response_model=models.PauseState, dependencies=[Depends(admin)],
             responses={404: {"model": models.Message}})
async def resume(request: Request, stage: StageName) -> Any:
    """Resume a paused stage on every worker."""
    ctx = context(request)
    _stage(ctx, stage)
    return await control.resume(ctx.redis, ctx.keys, stage, _operator(request), ctx.settings.events_maxlen)


@router.post("/status/clean", response_model=models.Cleaned, dependencies=[Depends(admin)])
async def clean(request: Request,
                older_than: Annotated[float, Query(ge=0, le=10 * 365 * 86400)] = 3600) -> Any:
    """Remove status records of finished tasks (done, failed, dead lettered) older than ``older_than`` s."""
    ctx = context(request)
    removed = await status_records.clean(ctx.redis, ctx.keys, ctx.status_ttl, older_than, FINAL)
    return {"removed": removed}
