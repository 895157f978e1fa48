"""``millstream bench soak`` and ``bench record-bytes`` run end to end and print their promised last lines."""

from __future__ import annotations

import re

import pytest

from bench.record_bytes import record_bytes
from bench.soak import soak
from tests.conftest import require_tool


def test_bench_soak_reaches_its_bounds_and_prints_memory_ratios(capsys: pytest.CaptureFixture[str]):
    require_tool("redis-server")
    soak(tasks=4000, rate=2000, status_max_records=900, dedup_max_keys=900, events_maxlen=100,
         trim_interval=0.1, sample_every=0.5)
    lines = capsys.readouterr().out.strip().splitlines()
    found = re.fullmatch(r"redis_mid_mb=([\d.]+) redis_end_mb=([\d.]+) redis_ratio=([\d.]+) "
                         r"rss_mid_mb=([\d.]+) rss_end_mb=([\d.]+) rss_ratio=([\d.]+)", lines[-1])
    assert found, lines[-1]
    assert lines[-2].startswith("4000 of 4000 tasks done")
    kept = re.search(r"at the end \{'status': (\d+), 'dedup': (\d+)", lines[-2])
    assert kept, lines[-2]
    # the bound, plus what arrived between two runs of the count bound (2000/s * 0.1 s, with slack)
    assert all(int(n) <= 900 + 600 for n in kept.groups())


def test_bench_record_bytes_prints_bytes_per_record_of_every_kind(capsys: pytest.CaptureFixture[str]):
    require_tool("redis-server")
    record_bytes(tasks=2000, batch=10, failures=200)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    costs = dict(pair.split("=") for pair in last.split())
    assert set(costs) == {"status", "dedup", "event", "stream_entry", "error_record", "dlq_entry"}
    assert all(float(v) > 0 for v in costs.values())
