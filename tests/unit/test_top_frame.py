"""The frame of `millstream top`: throughput from two snapshots, and text from Redis made plain."""

from __future__ import annotations

from rich.console import Console

from streams.cli.top import Snapshot, frame, throughput
from streams.figures import GroupStats, StreamStats


def _stream(read: int | None, group: str = "work", stream: str = "in") -> StreamStats:
    figures = GroupStats(group=group, lag=3, lag_seconds=1.5, pending=2, oldest_pending_seconds=0.0,
                         consumers=2, live_consumers=1, heartbeat_age_seconds=0.0, dlq_length=4,
                         dlq_oldest_seconds=0.0, entries_read=read)
    return StreamStats("p", stream, 10, 1, (figures,))


def test_throughput_is_the_change_of_entries_read_over_the_time_between_snapshots():
    assert throughput(Snapshot(10.0, [_stream(100)]), Snapshot(12.0, [_stream(150)])) == {("p", "in", "work"): 25.0}


def test_a_first_frame_a_reset_counter_or_an_unknown_one_has_no_throughput():
    assert throughput(None, Snapshot(1.0, [_stream(5)])) == {}
    assert throughput(Snapshot(1.0, [_stream(50)]), Snapshot(2.0, [_stream(3)])) == {}
    assert throughput(Snapshot(1.0, [_stream(None)]), Snapshot(2.0, [_stream(None)])) == {}


def test_control_characters_from_redis_never_reach_the_terminal():
    console = Console(width=200, record=True, force_terminal=False)
    console.print(frame(None, Snapshot(1.0, [_stream(1, group="evil\x1b[2J[/]", stream="s\u202e")]), "ms"))
    shown = console.export_text()
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "evil\\x1b[2J[/]" in shown and "s\\u202e" in shown and "-" in shown
