"""``millstream pause|resume|cancel|pending|trim``: the operator's levers on a running pipeline.

A thin layer over streams.redis.control (pausing, cancelling), XPENDING (what a stage
holds) and streams.redis.maintenance (trimming). ``register(app)`` adds the
commands to the ``millstream`` app.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from streams.cli.common import load_settings, run_async, shown
from streams.errors import StreamsError
from streams.redis import control, stats
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.maintenance import trim_acknowledged
from streams.redis.tasks import task_status
from streams.settings import Settings, secrets
from streams.text.plaintext import plain
from streams.text.redact import redact

T = TypeVar("T")
PipelineOpt = Annotated[str | None, typer.Option(help="Pipeline (default: the only one found)")]
StageArg = Annotated[str, typer.Argument(help="Stage name (its consumer group)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def register(app: typer.Typer) -> None:
    """Add ``pause``, ``resume``, ``cancel``, ``pending`` and ``trim`` to ``app``."""
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("cancel")(cancel)
    app.command("pending")(pending)
    app.command("trim")(trim)


# -- shared ----------------------------------------------------------------------


def _json(document: Any) -> str:
    """Indented JSON: still valid JSON, with secrets redacted and no raw C1/bidi controls."""
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    return plain(redact(text, secrets()), keep_newlines=True)


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


async def _pipeline(redis: Redis, settings: Settings, wanted: str | None) -> Keys:
    """``--pipeline``, or the only pipeline under the namespace."""
    if wanted:
        return Keys(settings.namespace, wanted)
    names = sorted({keys.pipeline for keys, _ in await stats.discover(redis, settings.namespace)})
    if len(names) != 1:
        raise StreamsError(f"say which pipeline with --pipeline (found: {', '.join(names) or 'none'})")
    return Keys(settings.namespace, names[0])


def _run(command: str, pipeline: str | None, work: Callable[[Redis, Keys, Settings], Awaitable[T]]) -> T:
    settings = load_settings()

    async def go() -> T:
        redis = connect(settings)
        try:
            return await work(redis, await _pipeline(redis, settings, pipeline), settings)
        finally:
            await redis.aclose()

    try:
        return run_async(go())
    except (StreamsError, RedisError, OSError) as error:
        typer.echo(f"millstream {command}: {shown(error)}", err=True)
        raise typer.Exit(2) from None


async def _streams(redis: Redis, keys: Keys) -> list[str]:
    """The logical names of the pipeline's streams."""
    return [s for k, s in await stats.discover(redis, keys.namespace) if k.pipeline == keys.pipeline]


async def _sources(redis: Redis, keys: Keys, stage: str) -> list[str]:
    """The pipeline's streams that stage ``stage`` reads (those with a group of its name)."""
    found = []
    for stream in await _streams(redis, keys):
        groups = await redis.xinfo_groups(keys.stream(stream))
        if any(_text(g["name"]) == stage for g in groups):
            found.append(stream)
    return found


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- pause and resume --------------------------------------------------------------


async def _pause(redis: Redis, keys: Keys, settings: Settings, stage: str) -> dict[str, Any]:
    answer = await control.pause(redis, keys, stage, settings.operator, settings.events_maxlen)
    return {**answer, "pipeline": keys.pipeline, "known": bool(await _sources(redis, keys, stage))}


def _pause_line(answer: dict[str, Any]) -> str:
    stage, pipeline = shown(answer["stage"]), shown(answer["pipeline"])
    since = f"by {shown(answer['by'])} at {_when(answer['at'])}"
    line = (f"stage {stage} of pipeline {pipeline} paused {since}: its workers finish what they "
            "hold and read nothing new" if answer["changed"]
            else f"stage {stage} of pipeline {pipeline} was already paused {since}")
    if not answer["known"]:
        line += f"\nnote: no stream of pipeline {pipeline} has a group {stage} yet; workers of that stage " \
                "will start paused"
    return line


def pause(stage: StageArg, pipeline: PipelineOpt = None, as_json: JsonOpt = False) -> None:
    """Pause a stage on every worker: they finish what they hold, then read and claim nothing."""
    answer = _run("pause", pipeline, lambda redis, keys, settings: _pause(redis, keys, settings, stage))
    typer.echo(_json(answer) if as_json else _pause_line(answer))


def resume(stage: StageArg, pipeline: PipelineOpt = None, as_json: JsonOpt = False) -> None:
    """Resume a paused stage: its workers read again within about the claim interval."""
    async def work(redis: Redis, keys: Keys, settings: Settings) -> dict[str, Any]:
        answer = await control.resume(redis, keys, stage, settings.operator, settings.events_maxlen)
        return {**answer, "pipeline": keys.pipeline}

    answer = _run("resume", pipeline, work)
    if as_json:
        typer.echo(_json(answer))
        return
    name, of = shown(answer["stage"]), shown(answer["pipeline"])
    typer.echo(f"stage {name} of pipeline {of} resumed" if answer["changed"]
               else f"stage {name} of pipeline {of} was not paused")


# -- cancel --------------------------------------------------------------------------

FINAL = ("done", "failed", "dead_lettered", "cancelled")  # streams.api.views.FINAL


async def _cancel(redis: Redis, keys: Keys, settings: Settings, request_ids: list[str],
                  reason: str) -> dict[str, Any]:
    ttl = control.cancel_ttl(settings)
    answers = []
    for rid in request_ids:
        try:
            answer = await control.cancel(redis, keys, rid, settings.operator, reason, ttl,
                                          events_maxlen=settings.events_maxlen)
        except ValueError as bad:
            raise StreamsError(str(bad)) from None
        record = await task_status(redis, keys, rid, settings.status_ttl)
        answers.append({**answer, "state": None if record is None else record.get("state")})
    return {"pipeline": keys.pipeline, "cancelled": answers}


def _cancel_line(answer: dict[str, Any]) -> str:
    rid, since = shown(answer["request_id"]), f"by {shown(answer['by'])} at {_when(answer['at'])}"
    line = (f"task {rid} cancelled {since}: queued, it is skipped; running, its handler is cancelled"
            if answer["changed"] else f"task {rid} was already cancelled {since}")
    state = answer["state"]
    if state in FINAL and state != "cancelled":
        line += f"\nnote: task {rid} had already ended ({shown(state)}); the cancel changes nothing"
    elif state is None:
        line += f"\nnote: no status record of task {rid}: unknown yet, or expired; if it arrives " \
                f"before {_when(answer['until'])} it is skipped"
    return line


def cancel(request_ids: Annotated[list[str], typer.Argument(help="Request ids of the tasks to cancel")],
           reason: Annotated[str, typer.Option(help="Why: the tasks' error records say it")] = "",
           pipeline: PipelineOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel tasks by request id, on every worker and those not started yet: queued, a task is
    skipped; running, its handler is cancelled. Either way it ends "cancelled" with an error record."""
    answer = _run("cancel", pipeline, lambda redis, keys, settings: _cancel(redis, keys, settings,
                                                                            request_ids, reason))
    if as_json:
        typer.echo(_json(answer))
        return
    for one in answer["cancelled"]:
        typer.echo(_cancel_line(one))


# -- pending -------------------------------------------------------------------------


async def _pending(redis: Redis, keys: Keys, stage: str, count: int) -> dict[str, Any]:
    """Up to ``count`` of ``stage``'s pending entries, oldest first per stream, with their request ids."""
    rows: list[dict[str, Any]] = []
    total = 0
    sources = await _sources(redis, keys, stage)
    for stream in sources:
        key = keys.stream(stream)
        total += int((await redis.xpending(key, stage))["pending"])
        found = await redis.xpending_range(key, stage, "-", "+", count - len(rows))
        async with redis.pipeline(transaction=False) as pipe:  # every request id in one round trip
            for p in found:
                pipe.xrange(key, p["message_id"], p["message_id"], count=1)
            ranges = await pipe.execute()
        for p, entry in zip(found, ranges, strict=True):
            rid = entry[0][1].get(b"rid") if entry else None
            rows.append({"stream": stream, "entry": _text(p["message_id"]), "consumer": _text(p["consumer"]),
                         "idle_seconds": int(p["time_since_delivered"]) / 1000,
                         "deliveries": int(p["times_delivered"]),
                         "request_id": None if rid is None else _text(rid)})
        if len(rows) >= count:
            break
    return {"pipeline": keys.pipeline, "stage": stage, "streams": sources, "total": total, "pending": rows}


def _pending_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="pending entries")
    for column in ("stream", "entry", "consumer", "idle s", "deliveries", "request id"):
        table.add_column(column, overflow="fold", justify="right" if column in ("idle s", "deliveries")
                         else "left")
    for r in rows:
        table.add_row(Text(shown(r["stream"])), Text(r["entry"]), Text(shown(r["consumer"])),
                      f"{r['idle_seconds']:.1f}", str(r["deliveries"]),
                      Text("-" if r["request_id"] is None else shown(r["request_id"])))
    return table


def pending(stage: StageArg, pipeline: PipelineOpt = None,
            count: Annotated[int, typer.Option(min=1, help="At most this many entries")] = 50,
            as_json: JsonOpt = False) -> None:
    """The entries a stage's consumers hold (delivered, not acknowledged): who, how long, how often."""
    answer = _run("pending", pipeline, lambda redis, keys, _: _pending(redis, keys, stage, count))
    if as_json:
        typer.echo(_json(answer))
        return
    if not answer["streams"]:
        typer.echo(f"no stream of pipeline {shown(answer['pipeline'])} has a group {shown(stage)}")
        return
    Console(width=None if sys.stdout.isatty() else 200, markup=False, highlight=False).print(
        _pending_table(answer["pending"]))
    typer.echo(f"{len(answer['pending'])} shown of {answer['total']} pending")


# -- trim ----------------------------------------------------------------------------


async def _trim(redis: Redis, keys: Keys) -> dict[str, Any]:
    removed = {s: await trim_acknowledged(redis, keys.stream(s)) for s in await _streams(redis, keys)}
    return {"pipeline": keys.pipeline, "removed": removed}


def trim(pipeline: PipelineOpt = None, as_json: JsonOpt = False) -> None:
    """Drop the entries every group of a stream has acknowledged, in every stream of the pipeline, now."""
    answer = _run("trim", pipeline, lambda redis, keys, _: _trim(redis, keys))
    if as_json:
        typer.echo(_json(answer))
        return
    for stream, n in answer["removed"].items():
        typer.echo(f"{shown(stream)}: {n} removed")
    if not answer["removed"]:
        typer.echo(f"pipeline {shown(answer['pipeline'])} has no streams")
