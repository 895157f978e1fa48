"""``millstream top``: a live view of every pipeline's stages, refreshed every ``--interval``.

One row per stage (consumer group): lag, lag in seconds, pending, delayed retries,
consumers live/total, dead letters and throughput. Throughput is the change of the
group's ``entries-read`` counter (XINFO GROUPS) between two samples over the time
between them: entries delivered to the stage per second. ``--once`` samples twice,
``--interval`` apart, and prints that one frame, so a piped snapshot has throughput too.
Every name read from Redis goes through ``plain`` before it reaches the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.cli.common import load_settings, run_async
from streams.figures import GroupStats, StreamStats
from streams.redis import stats
from streams.redis.connection import connect
from streams.text.plaintext import plain

GroupKey = tuple[str, str, str]  # (pipeline, stream, group)
COLUMNS = ("pipeline", "stream", "stage", "lag", "lag s", "pending", "delayed", "consumers",
           "dead", "entries/s")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every stream's figures, sampled at ``at`` (monotonic seconds)."""

    at: float
    streams: Sequence[StreamStats]

    def entries_read(self) -> dict[GroupKey, int]:
        return {(s.pipeline, s.stream, g.group): g.entries_read
                for s in self.streams for g in s.groups if g.entries_read is not None}


def throughput(before: Snapshot | None, after: Snapshot) -> dict[GroupKey, float]:
    """Entries read per second by each group sampled in both snapshots.

    A counter that went down (the group was deleted and made again) has no rate.
    """
    if before is None or after.at <= before.at:
        return {}
    old, elapsed = before.entries_read(), after.at - before.at
    return {key: (read - old[key]) / elapsed
            for key, read in after.entries_read().items() if key in old and read >= old[key]}


async def take(redis: Redis, namespace: str) -> Snapshot:
    """Sample every stream under ``namespace``."""
    found = await stats.discover(redis, namespace)
    return Snapshot(time.monotonic(), [await stats.sample(redis, keys, stream) for keys, stream in found])


def _cells(stream: StreamStats, group: GroupStats, rate: float | None) -> list[Text | str]:
    return [
        Text(plain(stream.pipeline)), Text(plain(stream.stream)), Text(plain(group.group)),
        str(group.lag), f"{group.lag_seconds:.1f}", str(group.pending), str(stream.delayed),
        f"{group.live_consumers}/{group.consumers}", str(group.dlq_length),
        "-" if rate is None else f"{rate:.1f}",
    ]


def frame(before: Snapshot | None, after: Snapshot, namespace: str) -> Table:
    """The table of ``after``, with throughput against ``before``."""
    rates = throughput(before, after)
    table = Table(title=Text(f"millstream top: namespace {plain(namespace)}"))
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("pipeline", "stream", "stage") else "right")
    for stream in after.streams:
        for group in stream.groups:
            table.add_row(*_cells(stream, group, rates.get((stream.pipeline, stream.stream, group.group))))
    if not table.rows:
        table.caption = "no stages found (is MILLSTREAM_REDIS_URL right? are the workers started?)"
    return table


async def watch(redis: Redis, namespace: str, interval: float, once: bool, console: Console) -> None:
    """Print one frame (``once``) or refresh a live one every ``interval`` seconds until cancelled."""
    before = await take(redis, namespace)
    if once:
        await asyncio.sleep(interval)
        console.print(frame(before, await take(redis, namespace), namespace))
        return
    with Live(frame(None, before, namespace), console=console, auto_refresh=False) as live:
        while True:
            await asyncio.sleep(interval)
            after = await take(redis, namespace)
            live.update(frame(before, after, namespace), refresh=True)
            before = after


async def _run(interval: float, once: bool, console: Console) -> None:
    settings = load_settings()
    redis = connect(settings)
    try:
        await watch(redis, settings.namespace, interval, once, console)
    finally:
        await redis.aclose()


def top(
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between refreshes")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit (for pipes)")] = False,
) -> None:
    """Live lag, pending, delayed, consumers, dead letters and throughput of every stage."""
    # Piped output keeps every column instead of squeezing to 80 characters.
    console = Console(width=None if sys.stdout.isatty() else 200)
    with contextlib.suppress(KeyboardInterrupt):
        run_async(_run(interval, once, console))


def register(app: typer.Typer) -> None:
    app.command("top")(top)
