"""``millstream dlq``: list, show, replay and purge dead letters (a thin layer over deadletters.py)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from streams.cli.common import load_settings, run_async
from streams.errors import StreamsError
from streams.redis import library, stats
from streams.redis.connection import connect
from streams.redis.deadletters import DeadLetter, DeadLetters, Report, Selection
from streams.redis.keys import Keys
from streams.settings import Settings, secrets
from streams.text.plaintext import plain
from streams.text.redact import redact
from streams.timeparse import parse_time

app = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
T = TypeVar("T")

PipelineOpt = Annotated[str | None, typer.Option(help="Pipeline (default: the only one found)")]
StageOpt = Annotated[str | None, typer.Option(help="Only this stage's dead letters")]
ReasonOpt = Annotated[str | None, typer.Option(help="Only reasons matching this regular expression")]
SinceOpt = Annotated[str | None, typer.Option(help="Died at or after: ISO time, unix seconds or age (2h)")]
UntilOpt = Annotated[str | None, typer.Option(help="Died at or before: ISO time, unix seconds or age")]
RequestOpt = Annotated[str | None, typer.Option("--request-id", help="Only this request id")]
LimitOpt = Annotated[int | None, typer.Option(help="At most this many dead letters")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 200, markup=False, highlight=False)


def _cell(value: object) -> Text:
    """Untrusted text as a table cell: never rich markup, no terminal escapes, no secrets."""
    return Text(plain(redact(str(value), secrets())))


def _fail(error: StreamsError) -> typer.Exit:
    typer.echo(f"millstream dlq: {error}", err=True)
    return typer.Exit(2)


def _json(document: Any) -> str:
    """Indented JSON for scripts: still valid JSON, with secrets redacted and no raw C1/bidi controls."""
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    return plain(redact(text, secrets()), keep_newlines=True)


def _selection(stage: str | None, reason: str | None, since: str | None, until: str | None,
               request_id: str | None) -> Selection:
    try:
        return Selection(stage, reason, parse_time(since) if since else None,
                         parse_time(until) if until else None, request_id)
    except StreamsError as error:
        raise _fail(error) from None


async def _pipeline(redis: Redis, settings: Settings, wanted: str | None) -> Keys:
    if wanted:
        return Keys(settings.namespace, wanted)
    names = sorted({keys.pipeline for keys, _ in await stats.discover(redis, settings.namespace)})
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise StreamsError(f"say which pipeline with --pipeline (found: {found})")
    return Keys(settings.namespace, names[0])


def _run(pipeline: str | None, work: Callable[[DeadLetters], Awaitable[T]]) -> T:
    settings = load_settings()

    async def go() -> T:
        redis = connect(settings)
        try:
            await library.load(redis)
            return await work(DeadLetters(redis, await _pipeline(redis, settings, pipeline), settings))
        finally:
            await redis.aclose()

    try:
        return run_async(go())
    except StreamsError as error:
        raise _fail(error) from None


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(letters: list[DeadLetter]) -> Table:
    table = Table(title="dead letters")
    columns = ("id", "stage", "request id", "reason", "deliveries", "attempts", "last error", "died (UTC)")
    for column in columns:
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(*map(_cell, (d.id, d.stage, d.request_id, d.reason, d.deliveries, d.attempts,
                                   d.last_error, _when(d.dead_at))))
    return table


@app.command("list")
def list_(pipeline: PipelineOpt = None, stage: StageOpt = None, reason: ReasonOpt = None,
          since: SinceOpt = None, until: UntilOpt = None, request_id: RequestOpt = None,
          limit: Annotated[int, typer.Option(help="Page size")] = 50,
          after: Annotated[str | None, typer.Option(help="Cursor printed by the previous page")] = None,
          as_json: JsonOpt = False) -> None:
    """List matching dead letters, a page at a time, with the total and the next page's cursor."""
    selection = _selection(stage, reason, since, until, request_id)
    page = _run(pipeline, lambda dl: dl.page(selection, limit, after))
    if as_json:
        typer.echo(_json({"letters": [d.as_json() for d in page.letters], "total": page.total,
                          "next": page.next_cursor}))
        return
    _console().print(_table(page.letters))
    typer.echo(f"{len(page.letters)} shown of {page.total} matching"
               + (f"; next page: --after {page.next_cursor}" if page.next_cursor else ""))


@app.command()
def show(dlq_id: Annotated[str, typer.Argument(help="Dead letter id (from `dlq list`)")],
         pipeline: PipelineOpt = None, as_json: JsonOpt = False) -> None:
    """Everything known about one dead letter: payload, provenance, error history."""
    letter = _run(pipeline, lambda dl: dl.get(dlq_id))
    if letter is None:
        typer.echo(f"millstream dlq: no dead letter {dlq_id}", err=True)
        raise typer.Exit(1)
    document = letter.as_json()
    if as_json:
        typer.echo(_json(document))
        return
    console = _console()
    for name in ("id", "stage", "request_id", "reason", "last_error", "deliveries", "attempts",
                 "source", "group", "consumer"):
        console.print(Text.assemble((name, "bold"), ": ", _cell(document[name])))
    console.print(Text.assemble(("died", "bold"), f": {_when(letter.dead_at)} UTC"))
    console.print(Text.assemble(("error history", "bold"), " (oldest first):"))
    for n, error in enumerate([*letter.errors, letter.last_error], 1):
        console.print(Text.assemble(f"  {n}. ", _cell(error)))
    console.print(Text.assemble(("payload", "bold"), ":"))
    console.print_json(_json(letter.payload))


def _with_progress(total_of: Callable[[DeadLetters], Awaitable[int]],
                   act: Callable[[DeadLetters, Callable[[int], None]], Awaitable[Report]],
                   pipeline: str | None, label: str) -> Report:
    async def work(dl: DeadLetters) -> Report:
        total = await total_of(dl)
        with Progress(transient=True) as bar:
            task = bar.add_task(label, total=total)
            return await act(dl, lambda n: bar.advance(task, n))

    return _run(pipeline, work)


def _print_report(report: Report, verb: str, dry_run: bool) -> None:
    would = "would be " if dry_run else ""
    typer.echo(f"{report.matched} matching; {report.done} {would}{verb}"
               + (f"; {report.gone} already gone (handled by another run)" if report.gone else "")
               + (f"; {len(report.skipped)} skipped (no decodable payload): "
                  f"{plain(', '.join(report.skipped))}" if report.skipped else ""))
    for target, count in report.targets.items():
        typer.echo(f"  {count} {would}to {plain(target)}")


@app.command()
def replay(pipeline: PipelineOpt = None, stage: StageOpt = None, reason: ReasonOpt = None,
           since: SinceOpt = None, until: UntilOpt = None, request_id: RequestOpt = None,
           to_stage: Annotated[str | None, typer.Option(help="Into this stage's source stream")] = None,
           edit: Annotated[Path | None, typer.Option(help="JSON merge patch applied to each payload")] = None,
           dry_run: Annotated[bool, typer.Option(help="Print what would happen; change nothing")] = False,
           rate: Annotated[float | None, typer.Option(help="At most this many per second")] = None,
           limit: LimitOpt = None) -> None:
    """Put matching dead letters back into their source stream; atomic, idempotent, audited."""
    selection = _selection(stage, reason, since, until, request_id)
    patch: Any = None
    if edit is not None:
        try:
            patch = orjson.loads(edit.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise typer.BadParameter(f"--edit {edit}: {error}") from None
    report = _with_progress(
        lambda dl: _count(dl, selection, limit),
        lambda dl, step: dl.replay(selection, to_stage=to_stage, patch=patch, dry_run=dry_run,
                                   rate=rate, limit=limit, progress=step),
        pipeline, "replaying")
    _print_report(report, "replayed", dry_run)


@app.command()
def purge(pipeline: PipelineOpt = None, stage: StageOpt = None, reason: ReasonOpt = None,
          since: SinceOpt = None, until: UntilOpt = None, request_id: RequestOpt = None,
          limit: LimitOpt = None,
          yes: Annotated[bool, typer.Option("--yes", help="Really delete")] = False) -> None:
    """Delete matching dead letters (audited). Without --yes, only says what it would delete."""
    selection = _selection(stage, reason, since, until, request_id)
    report = _with_progress(
        lambda dl: _count(dl, selection, limit),
        lambda dl, step: dl.purge(selection, limit=limit, dry_run=not yes, progress=step),
        pipeline, "purging")
    _print_report(report, "purged", dry_run=not yes)
    if not yes:
        typer.echo("nothing deleted: add --yes to purge")


@app.command()
def audit(pipeline: PipelineOpt = None, count: Annotated[int, typer.Option(help="Entries")] = 20) -> None:
    """The latest replays and purges: when, who, what, how many."""
    for entry in _run(pipeline, lambda dl: dl.audit(count)):
        typer.echo(plain(orjson.dumps(entry).decode()))


async def _count(dl: DeadLetters, selection: Selection, limit: int | None) -> int:
    total = (await dl.page(selection, limit=0)).total
    return min(total, limit) if limit is not None else total
