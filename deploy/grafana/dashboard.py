"""The Grafana dashboard: built from recording rules and metrics that exist.

Panels read recording rules (deploy/prometheus/recording.py) where one exists,
so a dashboard of many pipelines stays cheap; threshold lines come from
deploy/thresholds.toml, the same numbers the alerts use. A unit test checks
that every expression names only recorded series, exposed metrics or ALERTS.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy.prometheus.recording import COMPLETED, DRAIN, ERROR_RATIO, dlq, group, stage_rate
from deploy.thresholds import Alert, Thresholds

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
G = '{pipeline=~"$pipeline", group=~"$stage"}'
S = '{pipeline=~"$pipeline", stage=~"$stage"}'
P = '{pipeline=~"$pipeline"}'
AT_STREAM = "{{pipeline}}/{{stream}}"
AT_GROUP = "{{pipeline}}/{{group}}"
AT_STAGE = "{{pipeline}}/{{stage}}"


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    description: str
    targets: Sequence[tuple[str, str]]  # (expr, legend)
    unit: str = "short"
    threshold: float | None = None
    kind: str = "timeseries"
    extra: dict[str, Any] = field(default_factory=dict)


def _targets(panel: Panel) -> list[dict[str, Any]]:
    return [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
             **({"instant": True, "format": "table"} if panel.kind == "table" else {})}
            for i, (expr, legend) in enumerate(panel.targets)]


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.threshold is not None:
        defaults["thresholds"] = {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "red", "value": panel.threshold}]}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {"defaults": defaults, "overrides": []}


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    options = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
               "tooltip": {"mode": "multi", "sort": "desc"}} if panel.kind == "timeseries" else {}
    return {"id": panel_id, "type": panel.kind, "title": panel.title, "description": panel.description,
            "datasource": DATASOURCE, "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
            "fieldConfig": _field_config(panel), "options": options, "targets": _targets(panel),
            **panel.extra}


def _flow(a: Mapping[str, Alert]) -> list[Panel]:
    return [
        Panel("Firing millstream alerts", "Alerts now firing (Prometheus's ALERTS series).",
              [('ALERTS{alertname=~"Millstream.*", alertstate="firing"}', "{{alertname}}")], kind="table"),
        Panel("Throughput", "Entries processed per second, per stage (all workers).",
              [(f"{stage_rate('processed')}{S}", AT_STAGE), (f"{COMPLETED}{S}", AT_STAGE + " finished (5m)")],
              unit="ops"),
        Panel("Failures, retries, error records, dead letters", "Per second, per stage.",
              [(f"{stage_rate(c)}{S}", f"{AT_STAGE} {c}")
               for c in ("failed", "retried", "error_records", "dead_lettered")], unit="ops"),
        Panel("Error ratio", "Failed attempts / all attempts over 5 minutes.",
              [(f"{ERROR_RATIO}{S}", AT_STAGE)], unit="percentunit",
              threshold=a["MillstreamErrorRatioHigh"].threshold()),
        Panel("Handler duration", "Handler attempt duration quantiles over 5 minutes.",
              [(f"pipeline_stage:millstream_stage_handler_seconds:{q}{S}", f"{AT_STAGE} {q}")
               for q in ("p50", "p95", "p99")], unit="s"),
    ]


def _backlog(a: Mapping[str, Alert]) -> list[Panel]:
    return [
        Panel("Lag (entries)", "Entries of the source stream not yet delivered to the group.",
              [(f"{group('lag_entries')}{G}", AT_GROUP)],
              threshold=a["MillstreamLagEntriesHigh"].threshold()),
        Panel("Lag (seconds)", "Age of the oldest entry not yet delivered to the group.",
              [(f"{group('lag_seconds')}{G}", AT_GROUP)], unit="s",
              threshold=a["MillstreamLagSecondsHigh"].threshold()),
        Panel("Pending entries", "Delivered to a consumer, not yet acknowledged.",
              [(f"{group('pending')}{G}", AT_GROUP)]),
        Panel("Oldest pending entry", "Idle time of the oldest pending entry; past the deadline: stuck.",
              [(f"{group('oldest_pending_seconds')}{G}", AT_GROUP)], unit="s",
              threshold=a["MillstreamPendingStuck"].threshold()),
        Panel("Estimated time to drain", "Lag entries / entries finished per second (5m).",
              [(f"{DRAIN}{G}", AT_GROUP)], unit="s"),
        Panel("Stream length and delayed retries", "Entries kept in each stream; retries waiting.",
              [(f"pipeline_stream:millstream_stream_length:max{P}", AT_STREAM),
               (f"pipeline_stream:millstream_stream_delayed:max{P}", AT_STREAM + " delayed")]),
    ]


def _consumers() -> list[Panel]:
    return [
        Panel("Consumers", "Consumers registered in the group, and those with a live heartbeat.",
              [(f"{group('consumers')}{G}", AT_GROUP + " registered"),
               (f"{group('live_consumers')}{G}", AT_GROUP + " live")]),
        Panel("In flight", "Entries read and not yet committed, per stage.",
              [(f"pipeline_stage:millstream_stage_in_flight:sum{S}", AT_STAGE)]),
        Panel("Claims, fenced outcomes, hand-backs", "Recovery activity per second.",
              [(f"pipeline_stage_reason:millstream_stage_claimed:rate1m{S}",
                AT_STAGE + " claimed {{reason}}"),
               (f"{stage_rate('fenced')}{S}", AT_STAGE + " fenced"),
               (f"{stage_rate('handed_back')}{S}", AT_STAGE + " handed back")], unit="ops"),
        Panel("Heartbeat age", "Age of the stalest live heartbeat of the group.",
              [(f"{group('heartbeat_age_seconds')}{G}", AT_GROUP)], unit="s"),
    ]


def _dead_letters(a: Mapping[str, Alert]) -> list[Panel]:
    return [
        Panel("Dead letters", "Entries in each stage's dead-letter stream.",
              [(f"{dlq('length')}{S}", AT_STAGE)]),
        Panel("Oldest dead letter", "Age of the oldest dead letter.",
              [(f"{dlq('oldest_seconds')}{S}", AT_STAGE)],
              unit="s", threshold=a["MillstreamDeadLettersUnattended"].threshold()),
    ]


def _inference() -> list[Panel]:
    return [
        Panel("Inference requests", "Requests per second per model (retries included).",
              [("model:millstream_inference_requests:rate1m", "{{model}}"),
               ("model:millstream_inference_retries:rate1m", "{{model}} retries")], unit="reqps"),
        Panel("Inference errors", "Failed attempts per second by kind.",
              [("model_kind:millstream_inference_errors:rate1m", "{{model}} {{kind}}")], unit="ops"),
        Panel("Inference latency p95", "95th percentile of one request, over 5 minutes.",
              [("model:millstream_inference_latency_seconds:p95", "{{model}}")], unit="s"),
        Panel("Requests in flight", "Inference requests sent and not yet answered.",
              [("model:millstream_inference_in_flight:sum", "{{model}}")]),
        Panel("Batch sizes", "Images per model execution formed by Triton's dynamic batcher: "
              "the mean, and executions per second by batch size.",
              [("model:millstream_triton_batch_size:mean5m", "{{model}} mean"),
               ("model_batch_size:millstream_triton_batch_executions:rate5m",
                "{{model}} size {{batch_size}}")]),
    ]


def _rows(t: Thresholds) -> Iterator[tuple[str, list[Panel]]]:
    yield "Alerts and flow", _flow(t.alerts)
    yield "Backlog", _backlog(t.alerts)
    yield "Consumers", _consumers()
    yield "Dead letters", _dead_letters(t.alerts)
    yield "Inference (Triton)", _inference()


def _variables() -> list[dict[str, Any]]:
    def query(name: str, expr: str) -> dict[str, Any]:
        return {"name": name, "label": name, "type": "query", "datasource": DATASOURCE,
                "query": {"query": expr, "refId": name}, "definition": expr,
                "refresh": 2, "multi": True, "includeAll": True, "sort": 1,
                "current": {"text": "All", "value": "$__all"}}

    lag = group("lag_entries")
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
        query("pipeline", f"label_values({lag}, pipeline)"),
        query("stage", f'label_values({lag}{{pipeline=~"$pipeline"}}, group)'),
    ]


def dashboard(thresholds: Thresholds) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for title, row in _rows(thresholds):
        panels.append({"id": len(panels) + 1, "type": "row", "title": title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        y += 1
        for i, panel in enumerate(row):
            panels.append(_panel(panel, len(panels) + 1, 12 * (i % 2), y + 8 * (i // 2)))
        y += 8 * ((len(row) + 1) // 2)
    return {
        "uid": "millstream", "title": "millstream", "tags": ["millstream"], "schemaVersion": 39,
        "version": 1, "editable": True, "graphTooltip": 1, "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"}, "timezone": "",
        "templating": {"list": _variables()}, "annotations": {"list": []}, "panels": panels,
    }


def expressions(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs
