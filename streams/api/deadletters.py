"""The dead-letter toolkit over HTTP, with the CLI's semantics (streams.redis.deadletters).

Replays and purges are atomic per batch, idempotent (a letter moves once,
however many replays run at once) and audited; ``dry_run`` says what would
happen and changes nothing; ``patch`` is a JSON merge patch (RFC 7396)
applied to each replayed payload.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, StrictBool

from streams.api.auth import ROUTE_RESPONSES, admin, context, invalid, reader
from streams.api.models import Message, Problems
from streams.errors import StreamsError
from streams.redis.deadletters import DeadLetter, DeadLetters, Report, Selection

router = APIRouter(prefix="/v1/dlq", tags=["dead letters"], responses=ROUTE_RESPONSES)
Id = Annotated[str, Path(max_length=40, pattern=r"^\d{1,20}-\d{1,20}$")]


class Filter(BaseModel):
    stage: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=500, description="A regular expression (searched)")
    since: float | None = Field(None, ge=0, le=1e11, description="Dead since (unix seconds)")
    until: float | None = Field(None, ge=0, le=1e11, description="Dead until (unix seconds)")
    request_id: str | None = Field(None, max_length=256)
    ids: list[Annotated[str, Field(pattern=r"^\d{1,20}-\d{1,20}$")]] | None = Field(
        None, max_length=1000, description="Only these dead letters (their ids)")
    limit: int | None = Field(None, ge=1, le=1_000_000)
    dry_run: StrictBool = False


class Replay(Filter):
    rate: float | None = Field(None, gt=0, le=100_000, description="At most this many letters per second")
    patch: Any = Field(None, description="A JSON merge patch applied to each payload before it is replayed")
    to_stage: str | None = Field(None, max_length=200, description="Into this stage's stream instead")


class Letter(BaseModel):
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
    errors: list[Any]


class LetterPage(BaseModel):
    letters: list[Letter]
    total: int
    next: str | None


class Outcome(BaseModel):
    matched: int
    done: int
    gone: int
    skipped: list[str]
    targets: dict[str, int]
    dry_run: bool


def _letters(request: Request) -> DeadLetters:
    ctx = context(request)
    return DeadLetters(ctx.redis, ctx.keys, ctx.settings)


def _selection(where: str, stage: str | None, reason: str | None, since: float | None, until: float | None,
               request_id: str | None, ids: list[str] | None = None) -> Selection:
    if reason is not None:
        try:
            re.compile(reason)
        except re.error as error:
            raise invalid([where, "reason"], f"not a valid regular expression: {error}") from None
    return Selection(stage, reason, since, until, request_id, frozenset(ids) if ids is not None else None)


def _letter(letter: DeadLetter) -> dict[str, Any]:
    shown = letter.as_json()
    shown.pop("fields", None)
    return shown


def _outcome(report: Report, dry_run: bool) -> dict[str, Any]:
    return {"matched": report.matched, "done": report.done, "gone": report.gone, "skipped": report.skipped,
            "targets": report.targets, "dry_run": dry_run}


@router.get("", response_model=LetterPage, dependencies=[Depends(reader)],
            responses={422: {"model": Problems}})
async def letters(request: Request,
                  stage: Annotated[str | None, Query(max_length=200)] = None,
                  reason: Annotated[str | None, Query(max_length=500)] = None,
                  since: Annotated[float | None, Query(ge=0, le=1e11)] = None,
                  until: Annotated[float | None, Query(ge=0, le=1e11)] = None,
                  request_id: Annotated[str | None, Query(max_length=256)] = None,
                  cursor: Annotated[str | None, Query(max_length=300)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
    """Dead letters matching the filter, oldest first, with the total from the cursor on."""
    selection = _selection("query", stage, reason, since, until, request_id)
    page = await _letters(request).page(selection, limit, cursor)
    shown = [_letter(letter) for letter in page.letters]
    return {"letters": shown, "total": page.total, "next": page.next_cursor}


@router.get("/audit", dependencies=[Depends(reader)])
async def audit(request: Request, count: Annotated[int, Query(ge=1, le=1000)] = 20) -> list[dict[str, str]]:
    """The latest replays and purges, newest first: when, who, what, how many."""
    return await _letters(request).audit(count)


@router.get("/{stage}/{dlq_id}", response_model=Letter, dependencies=[Depends(reader)],
            responses={404: {"model": Message}})
async def letter(request: Request, stage: Annotated[str, Path(max_length=200)], dlq_id: Id) -> Any:
    """One dead letter: its payload, provenance and error history."""
    ctx = context(request)
    found: Any = []
    if _known(request, stage):
        found = await ctx.redis.xrange(ctx.keys.dlq(stage), min=dlq_id, max=dlq_id)
    if not found:
        raise HTTPException(404, f"no dead letter {dlq_id} of stage {stage!r}")
    return _letter(DeadLetter.parse(stage, found[0][0], found[0][1]))


_ANY_JSON: dict[str, Any] = {"description": "A JSON merge patch (RFC 7396) of the payload"}
_PATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/merge-patch+json": {"schema": _ANY_JSON}, "application/json": {"schema": _ANY_JSON}}}}


@router.patch("/{stage}/{dlq_id}", response_model=Letter, dependencies=[Depends(admin)],
              openapi_extra=_PATCH_BODY, responses={404: {"model": Message}, 422: {"model": Problems}})
async def edit(request: Request, stage: Annotated[str, Path(max_length=200)], dlq_id: Id) -> Any:
    """Edit a letter's payload with the JSON merge patch in the body (audited); the letter is filed
    again under a new id, answered here."""
    try:
        patch = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        raise invalid(["body"], f"invalid JSON: {error}") from None
    try:
        edited = await _letters(request).edit(stage, dlq_id, patch) if _known(request, stage) else None
    except StreamsError as error:
        raise invalid(["body"], str(error)) from None
    if edited is None:
        raise HTTPException(404, f"no dead letter {dlq_id} of stage {stage!r}")
    return _letter(edited)


def _known(request: Request, stage: str) -> bool:
    return any(s.name == stage for s in context(request).pipeline.stages)


@router.post("/replay", response_model=Outcome, dependencies=[Depends(admin)],
             responses={400: {"model": Message, "description": "A body that is not JSON"},
                        422: {"model": Problems}})
async def replay(request: Request, body: Replay) -> Any:
    """Put matching letters back into their stream (or ``to_stage``'s), edited by ``patch``."""
    selection = _selection("body", body.stage, body.reason, body.since, body.until, body.request_id, body.ids)
    if body.to_stage is not None and not _known(request, body.to_stage):
        raise invalid(["body", "to_stage"], f"no stage {body.to_stage!r} in this pipeline")
    try:
        report = await _letters(request).replay(selection, to_stage=body.to_stage, patch=body.patch,
                                                dry_run=body.dry_run, rate=body.rate, limit=body.limit)
    except StreamsError as error:
        raise invalid(["body", "patch"], str(error)) from None
    return _outcome(report, body.dry_run)


@router.post("/purge", response_model=Outcome, dependencies=[Depends(admin)],
             responses={400: {"model": Message, "description": "A body that is not JSON"},
                        422: {"model": Problems}})
async def purge(request: Request, body: Filter) -> Any:
    """Delete matching letters (audited); ``dry_run`` only counts them."""
    selection = _selection("body", body.stage, body.reason, body.since, body.until, body.request_id, body.ids)
    report = await _letters(request).purge(selection, limit=body.limit, dry_run=body.dry_run)
    return _outcome(report, body.dry_run)
