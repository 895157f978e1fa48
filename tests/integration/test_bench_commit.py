"""``millstream bench commit`` runs end to end and prints its figures in the promised last line."""

from __future__ import annotations

import re

import pytest

from bench.commit import commit
from tests.conftest import require_tool


def test_bench_commit_prints_both_figures_and_their_ratio(capsys: pytest.CaptureFixture[str]):
    require_tool("redis-server")
    commit(batch=5, commits=2, rounds=1)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    found = re.fullmatch(r"commit_us_per_entry=([\d.]+) baseline_us_per_entry=([\d.]+) ratio=([\d.]+)", last)
    assert found, last
    ours, raw, ratio = map(float, found.groups())
    assert ours > 0 and raw > 0
    assert ratio == pytest.approx(ours / raw, rel=0.02)  # the figures are printed rounded
