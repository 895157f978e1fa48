"""``millstream bench api`` runs end to end, with tiny sizes, and prints its figures in the promised last line."""

from __future__ import annotations

import importlib.util
import re

import pytest

from bench.api import api
from tests.conftest import IN_CI, require_tool


def test_bench_api_prints_ingest_and_fan_out_figures_with_their_ratios(capsys: pytest.CaptureFixture[str]):
    require_tool("redis-server")
    missing = [m for m in ("fastapi", "uvicorn", "httpx") if importlib.util.find_spec(m) is None]
    if missing:
        (pytest.fail if IN_CI else pytest.skip)(f"the API's packages are missing: {missing}")
    api(tasks_=20, batched=200, connections=2, clients=3, events=20, depth=500, redis_url=None)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = {name: float(value) for name, value in re.findall(r"(\w+)=([\d.e+-]+)", last)}
    assert set(figures) == {f"ingest_{n}_{f}" for n in (1, 100) for f in ("api_per_s", "raw_per_s", "ratio")} | {
        "sse_events_per_s", "xread_events_per_s", "sse_ratio", "list_first_ms", "list_deep_ms",
        "list_deep_raw_ms", "list_depth_ratio"}, last
    assert all(value > 0 for value in figures.values()), last
    for n in (1, 100):
        assert figures[f"ingest_{n}_ratio"] == pytest.approx(
            figures[f"ingest_{n}_api_per_s"] / figures[f"ingest_{n}_raw_per_s"], rel=0.01)
    assert figures["sse_ratio"] == pytest.approx(figures["sse_events_per_s"] / figures["xread_events_per_s"], rel=0.01)
    assert figures["list_depth_ratio"] == pytest.approx(figures["list_deep_ms"] / figures["list_first_ms"], rel=0.01)
