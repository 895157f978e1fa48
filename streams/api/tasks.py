"""Producers' routes: publish tasks, look one up, list them, cancel one."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from streams.api import listing, models, views
from streams.api.auth import ROUTE_RESPONSES, admin, context, invalid, reader
from streams.codec import encode_payload
from streams.errors import PayloadTooLarge
from streams.priority import routed
from streams.redis import control
from streams.redis.tasks import task_status

router = APIRouter(prefix="/v1", tags=["tasks"], responses=ROUTE_RESPONSES)
MAX_REQUEST_ID = 256

_TASK_SCHEMA = {"type": "object", "description": "A task: the JSON object the pipeline's entry stream takes",
                "additionalProperties": True, "properties": {
                    "request_id": {"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID},
                    "priority": {"description": "critical, high, normal or low (Bull's 1-4): on a stream "
                                                "read by priority only; normal anywhere",
                                 "oneOf": [{"enum": ["critical", "high", "normal", "low"]},
                                           {"type": "integer", "minimum": 1, "maximum": 4}]}}}
_INGEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [_TASK_SCHEMA, {"type": "array", "items": _TASK_SCHEMA, "minItems": 1}]}}}}}


def _problem(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def _request_id_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_REQUEST_ID:
        return f"request_id must be a string of 1 to {MAX_REQUEST_ID} characters"
    if not value.isprintable():
        return "request_id must not contain control or invisible characters"
    return None


@router.post("/tasks", status_code=202, response_model=models.Accepted, dependencies=[Depends(admin)],
             openapi_extra=_INGEST_BODY, responses={422: {"model": models.Problems}})
async def publish(request: Request, stream: Annotated[str | None, Query(max_length=200)] = None) -> Any:
    """Publish one task (an object) or a batch (an array), atomically; idempotent by ``request_id``."""
    ctx = context(request)
    target = stream or ctx.pipeline.entry
    if target not in ctx.ingest_streams:
        known = ", ".join(ctx.ingest_streams)
        unknown = {"loc": ["query", "stream"], "type": "value_error",
                   "msg": f"no stage reads stream {target!r} (streams: {known})"}
        return JSONResponse({"detail": [unknown]}, 422)
    try:
        document = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        return JSONResponse({"detail": [_problem([], f"invalid JSON: {error}", "json_invalid")]}, 422)
    batch = isinstance(document, list)
    tasks = document if batch else [document]
    problems = []
    if not tasks:
        problems.append(_problem([], "an empty batch: send a task object or a non-empty array", "too_short"))
    if len(tasks) > ctx.api.api_max_batch:
        problems.append(_problem([], f"{len(tasks)} tasks, over the limit of {ctx.api.api_max_batch} "
                                     "per request (MILLSTREAM_API_MAX_BATCH)", "too_long"))
    validate = ctx.pipeline.validators.get(target)
    items = []
    for n, task in enumerate(tasks[:ctx.api.api_max_batch]):
        at: list[str | int] = [n] if batch else []
        if not isinstance(task, dict):
            problems.append(_problem(at, "a task must be a JSON object", "dict_type"))
            continue
        if bad_id := _request_id_problem(task.get("request_id")):
            problems.append(_problem([*at, "request_id"], bad_id, "value_error"))
        for field, wrong in validate(task) if validate else ():
            problems.append(_problem([*at, field], wrong, "value_error"))
        try:
            encode_payload(task, ctx.settings.max_payload_bytes)
        except PayloadTooLarge as error:
            problems.append(_problem(at, str(error), "too_large"))
        try:
            routed(target, task.get("priority"), ctx.pipeline.prioritized)
        except ValueError as error:
            problems.append(_problem([*at, "priority"], str(error), "value_error"))
        items.append((task, task.get("request_id"), task.get("priority")))
    if problems:
        return JSONResponse({"detail": problems}, 422)
    entries = await ctx.publisher.publish_many(target, items)
    lanes = [routed(target, level, ctx.pipeline.prioritized) for _, _, level in items]
    rids = await _request_ids(request, lanes, entries, [rid for _, rid, _ in items])
    published = [{"request_id": r, "entry": e} for r, e in zip(rids, entries, strict=True)]
    return {"stream": target, "tasks": published}


async def _request_ids(request: Request, streams: list[str], entries: list[str],
                       given: list[str | None]) -> list[str]:
    """The request ids of published entries (each in its stream): as given, or as the publisher made them."""
    if all(given):
        return [rid for rid in given if rid]
    ctx = context(request)
    pipe = ctx.redis.pipeline(transaction=False)
    for stream, entry in zip(streams, entries, strict=True):
        pipe.xrange(ctx.keys.stream(stream), min=entry, max=entry)
    found = await pipe.execute()
    return [rid or (f[0][1].get(b"rid", b"").decode() if f else "")
            for rid, f in zip(given, found, strict=True)]


@router.get("/tasks/{request_id}", response_model=models.Task, dependencies=[Depends(reader)],
            responses={404: {"model": models.Message}})
async def task(request: Request, request_id: Annotated[str, Path(max_length=MAX_REQUEST_ID)]) -> Any:
    """A task's state, current stage, every transition with its time, attempts, last error and outcome."""
    ctx = context(request)
    record = await task_status(ctx.redis, ctx.keys, request_id, ctx.status_ttl)
    if record is None:
        raise HTTPException(404, f"no task {request_id!r} (unknown, or its status record expired)")
    return views.task(request_id, record, ctx.ends)


@router.post("/tasks/{request_id}/cancel", response_model=models.Cancelled, dependencies=[Depends(admin)])
async def cancel(request: Request, request_id: Annotated[str, Path(max_length=MAX_REQUEST_ID)],
                 body: models.CancelRequest | None = None) -> Any:
    """Cancel a task on every worker, persisted in Redis: queued (or not published yet), it is skipped;
    running, its handler is cancelled. It ends ``cancelled`` with an error record giving the reason."""
    ctx = context(request)
    answer = await control.cancel(ctx.redis, ctx.keys, request_id, f"api:{ctx.settings.operator}",
                                  body.reason if body else "", control.cancel_ttl(ctx.settings),
                                  events_maxlen=ctx.settings.events_maxlen)
    return {"request_id": request_id, "cancelled": True, "by": answer["by"], "at": answer["at"]}


StageQuery = Annotated[str | None, Query(max_length=200, description="A stage of the pipeline")]
StateQuery = Annotated[str | None, Query(max_length=40, description=(
    "waiting, active, delayed or dead (read from the stage's queue), or a status state: "
    "queued, forwarded, done, retrying, failed, dead_lettered, handed_back, replayed, cancelled"))]
PageQuery = Annotated[str | None, Query(max_length=100, description="The `next` of the page before")]


@router.get("/tasks", response_model=models.TaskPage, dependencies=[Depends(reader)],
            responses={404: {"model": models.Message}, 422: {"model": models.Problems}})
async def tasks(request: Request, stage: StageQuery = None, state: StateQuery = None,
                page: PageQuery = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
    """A page of tasks by stage and state; ``next`` is the cursor of the following page (null at the end)."""
    ctx = context(request)
    known = {s.name: s for s in ctx.pipeline.stages}
    if stage is not None and stage not in known:
        raise HTTPException(404, f"no stage {stage!r} (stages: {', '.join(known)})")
    try:
        if state in listing.QUEUES:
            where = known[stage] if stage else ctx.pipeline.stages[0]
            found = await listing.queue(ctx.redis, ctx.keys, where, state, limit, page)
        else:
            found = await listing.status(ctx.redis, ctx.keys, ctx.status_ttl, stage, state, limit, page)
    except listing.BadCursor:
        raise invalid(["query", "page"], f"page {page!r} is not a cursor this listing handed out") from None
    return {"tasks": found.tasks, "limit": limit, "next": found.next}
