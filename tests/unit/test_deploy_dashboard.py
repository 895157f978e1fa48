"""The Grafana dashboard reads only series that exist, and shows the alert thresholds."""

from __future__ import annotations

import json

import pytest

from deploy.catalogue import BUILTIN, inference_metrics, names_in, stream_metrics
from deploy.grafana.dashboard import dashboard, expressions
from deploy.prometheus import recording
from deploy.render import DEPLOY
from deploy.thresholds import load

BOARD = DEPLOY / "grafana" / "millstream.json"


def known_series() -> set[str]:
    try:
        inference = inference_metrics()
    except ImportError:
        pytest.skip("processors/inference/metrics.py is not there to name the inference metrics")
    return stream_metrics() | inference | set(recording.names()) | BUILTIN


def test_the_committed_dashboard_is_the_generated_one():
    assert json.loads(BOARD.read_text()) == dashboard(load())


def test_every_dashboard_expression_reads_recorded_series_or_exposed_metrics():
    known = known_series()
    board = json.loads(BOARD.read_text())
    exprs = expressions(board)
    assert len(exprs) > 20
    for expr in exprs:
        assert names_in(expr), f"no series in {expr!r}"
        assert names_in(expr) <= known, f"{expr!r} reads {names_in(expr) - known}"


def test_every_panel_has_a_unique_id_and_panels_do_not_overlap():
    panels = json.loads(BOARD.read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for p in panels:
        box = p["gridPos"]
        assert box["x"] + box["w"] <= 24
        mine = {(x, y) for x in range(box["x"], box["x"] + box["w"])
                for y in range(box["y"], box["y"] + box["h"])}
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine


def test_panels_read_the_prometheus_datasource_chosen_by_the_variable():
    board = json.loads(BOARD.read_text())
    assert board["templating"]["list"][0] == {"name": "datasource", "label": "Data source",
                                              "type": "datasource", "query": "prometheus"}
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_threshold_lines_are_the_alert_thresholds():
    thresholds = load().alerts
    steps = {p["title"]: p["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"]
             for p in json.loads(BOARD.read_text())["panels"]
             if "thresholds" in p.get("fieldConfig", {}).get("defaults", {})}
    assert steps["Lag (seconds)"] == thresholds["MillstreamLagSecondsHigh"].threshold() == 300
    assert steps["Lag (entries)"] == thresholds["MillstreamLagEntriesHigh"].threshold()
    assert steps["Error ratio"] == thresholds["MillstreamErrorRatioHigh"].threshold()
