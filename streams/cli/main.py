"""The ``millstream`` command line: a thin layer over the library.

Commands that belong to other packages (the Triton launcher, benchmarks of the
image pipeline) are contributed through the ``millstream.commands`` entry-point
group: each entry names a ``register(app, bench)`` function, so this module
never imports ``processors``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from importlib.metadata import entry_points
from typing import Annotated, Any

import orjson
import typer
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from streams.cli import ops, top
from streams.cli.common import load_factory, load_settings, run_async, setup_logging, shown
from streams.cli.dlq import app as dlq_app
from streams.errors import ConfigError, StreamsError
from streams.redis import stats
from streams.redis.connection import connect
from streams.settings import Settings, from_env, section
from streams.text.plaintext import plain

# Tracebacks never print local variables: settings and clients hold passwords.
app = typer.Typer(help="millstream: stream processing on Redis Streams.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
bench_app = typer.Typer(help="Reproducible benchmarks that print their figures.", no_args_is_help=True,
                        pretty_exceptions_show_locals=False)
app.add_typer(bench_app, name="bench")
app.add_typer(dlq_app, name="dlq")
ops.register(app)
top.register(app)
@app.command()
def worker(
    factory: Annotated[str, typer.Argument(help="Pipeline factory, as package.module:function")],
    stage: Annotated[list[str] | None, typer.Option(help="Only this stage or bridge (repeatable)")] = None,
    consumer: Annotated[str | None, typer.Option(help="Consumer name (default host-pid)")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Port of /metrics (0: off)")] = None,
) -> None:
    """Run a pipeline's stages in this process until SIGTERM or Ctrl-C."""
    from streams.service.worker import run

    settings = load_settings(consumer=consumer, metrics_port=metrics_port)
    setup_logging(settings)
    pipeline = load_factory(factory)(settings)
    try:
        run_async(run(pipeline, settings, stage or ()))
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0])) from None
    except (StreamsError, RedisError) as error:
        where = shown(settings.redis_url)
        raise SystemExit(f"millstream worker: {shown(error)} (MILLSTREAM_REDIS_URL={where})") from None


@app.command()
def api(
    factory: Annotated[str, typer.Argument(help="Pipeline factory, as package.module:function")],
    host: Annotated[str | None, typer.Option(help="Address to bind (MILLSTREAM_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (MILLSTREAM_API_PORT)")] = None,
) -> None:
    """Serve the pipeline's HTTP API, live events and dashboard until SIGTERM or Ctrl-C."""
    from streams.api.serve import serve
    from streams.api.settings import ApiSettings

    settings = load_settings()
    setup_logging(settings)
    try:
        api_settings = section(ApiSettings)
        api_settings = dataclasses.replace(api_settings, api_host=host or api_settings.api_host,
                                           api_port=api_settings.api_port if port is None else port)
    except ConfigError as error:
        raise typer.BadParameter(str(error)) from None
    pipeline = load_factory(factory)(settings)
    with contextlib.suppress(KeyboardInterrupt):
        run_async(serve(pipeline, settings, api_settings))


@app.command()
def exporter(
    metrics_port: Annotated[int | None, typer.Option(help="Port of /metrics")] = None,
) -> None:
    """Serve lag, pending and dead-letter gauges of every stream, with or without workers."""
    from streams.service.exporter import run

    settings = load_settings(metrics_port=metrics_port)
    setup_logging(settings)
    if not settings.metrics_port:
        raise typer.BadParameter("the exporter needs a port: MILLSTREAM_METRICS_PORT or --metrics-port")
    with contextlib.suppress(KeyboardInterrupt):
        run_async(run(settings))


async def _status(settings: Settings) -> list[dict[str, Any]]:
    redis = connect(settings)
    try:
        found = await stats.discover(redis, settings.namespace)
        sampled = [await stats.sample(redis, keys, stream) for keys, stream in found]
    finally:
        await redis.aclose()
    return [dataclasses.asdict(s) for s in sampled]


def _status_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="millstream streams and groups")
    for column in ("pipeline", "stream", "length", "delayed", "group", "lag", "lag s", "pending",
                   "oldest pending s", "consumers", "live", "heartbeat age s", "dlq", "dlq oldest s"):
        table.add_column(column, justify="left" if column in ("pipeline", "stream", "group") else "right")
    for s in rows:
        head: list[Text | str] = [Text(plain(s["pipeline"])), Text(plain(s["stream"])), str(s["length"]),
                                  str(s["delayed"])]
        for g in s["groups"] or [None]:
            cells: list[Text | str] = ["-"] * 10 if g is None else [
                Text(plain(g["group"])), str(g["lag"]), f"{g['lag_seconds']:.1f}", str(g["pending"]),
                f"{g['oldest_pending_seconds']:.1f}", str(g["consumers"]), str(g["live_consumers"]),
                f"{g['heartbeat_age_seconds']:.1f}", str(g["dlq_length"]), f"{g['dlq_oldest_seconds']:.0f}",
            ]
            table.add_row(*head, *cells)
    return table


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """One table of every stream and group: length, lag, pending, consumers, dead letters."""
    rows = run_async(_status(load_settings()))
    if as_json:
        typer.echo(orjson.dumps({"streams": rows}, option=orjson.OPT_INDENT_2).decode())
    elif not rows:
        typer.echo("no millstream streams found (is MILLSTREAM_REDIS_URL right?)")
    else:
        # Piped output keeps every column instead of squeezing to 80 characters.
        Console(width=None if sys.stdout.isatty() else 200).print(_status_table(rows))


def _register_plugins() -> dict[str, str]:
    """Register contributed commands; return those needing a package that is not installed.

    ``pip install millstream`` without the image extras is a normal install: its
    commands stay quiet about the image pipeline's, unless one is asked for.
    """
    missing: dict[str, str] = {}
    for entry in entry_points(group="millstream.commands"):
        try:
            register = entry.load()
        except ModuleNotFoundError as error:
            missing[entry.name] = error.name or str(error)
            continue
        except Exception as error:  # noqa: BLE001 - a broken plugin must not take every command down
            typer.echo(f"millstream: commands of {entry.value} unavailable: {error}", err=True)
            continue
        register(app, bench_app)
    return missing


def _needs_extras(argv: list[str], missing: dict[str, str]) -> str | None:
    """The hint for a command whose package is missing (``up``, ``triton``, ``bench pipeline``)."""
    words = [word for word in argv[1:3] if not word.startswith("-")]
    for name, module in missing.items():
        command = name.removesuffix("-bench")
        if words[:1] == [command] or words[:2] == ["bench", command]:
            return (f"millstream: `{' '.join(words[:2] if words[:1] == ['bench'] else words[:1])}` needs "
                    f"the image pipeline's extras (module {module!r} is missing): "
                    "pip install 'millstream[pipeline,triton]'")
    return None


def main() -> None:
    """Console-script entry point; Redis being unreachable is one line, not a traceback."""
    hint = _needs_extras(sys.argv, _register_plugins())
    if hint:
        typer.echo(hint, err=True)
        raise SystemExit(2)
    try:
        app()
    except (RedisError, OSError) as error:
        try:
            where = f" at {shown(from_env().redis_url)}"
        except ConfigError:
            where = ""
        typer.echo(f"millstream: Redis{where} failed: {shown(error)}; check MILLSTREAM_REDIS_URL", err=True)
        raise SystemExit(1) from None
