"""Recording rules: the figures dashboards, alerts and autoscalers read.

Names follow Prometheus's ``level:metric:operation`` convention. Group and
dead-letter gauges may come from a worker (its own source streams) and from
the exporter (every stream) at once, so they are combined with ``max``; stage
counters come from every worker of a stage, so their rates are summed.
"""

from __future__ import annotations

from typing import Any

GROUP = "pipeline, stream, group"
STAGE = "pipeline, stage"

GROUP_GAUGES = ("lag_entries", "lag_seconds", "pending", "oldest_pending_seconds", "consumers",
                "live_consumers", "heartbeat_age_seconds")
STREAM_GAUGES = ("length", "delayed")
DLQ_GAUGES = ("length", "oldest_seconds")
STAGE_COUNTERS = ("processed", "failed", "retried", "error_records", "dead_lettered", "fenced",
                  "handed_back")
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def group(name: str) -> str:
    """The recorded name of group gauge ``millstream_group_<name>``."""
    return f"pipeline_stream_group:millstream_group_{name}:max"


def dlq(name: str) -> str:
    return f"pipeline_stage:millstream_dlq_{name}:max"


def stage_rate(counter: str) -> str:
    return f"pipeline_stage:millstream_stage_{counter}:rate1m"


COMPLETED = "pipeline_stage:millstream_stage_completed:rate5m"
ERROR_RATIO = "pipeline_stage:millstream_stage_error_ratio:rate5m"
DRAIN = "pipeline_stream_group:millstream_group_drain_seconds:estimate"


def _stage_rules() -> list[dict[str, str]]:
    rules = [{"record": stage_rate(c), "expr": f"sum by ({STAGE}) (rate(millstream_stage_{c}_total[1m]))"}
             for c in STAGE_COUNTERS]
    rules += [
        {"record": "pipeline_stage_reason:millstream_stage_claimed:rate1m",
         "expr": f"sum by ({STAGE}, reason) (rate(millstream_stage_claimed_total[1m]))"},
        {"record": "pipeline_stage:millstream_stage_in_flight:sum",
         "expr": f"sum by ({STAGE}) (millstream_stage_in_flight)"},
        {"record": COMPLETED,
         "expr": f"sum by ({STAGE}) (\n  rate(millstream_stage_processed_total[5m])\n"
                 "  + rate(millstream_stage_error_records_total[5m])\n"
                 "  + rate(millstream_stage_dead_lettered_total[5m])\n)"},
        {"record": ERROR_RATIO,
         "expr": f"sum by ({STAGE}) (rate(millstream_stage_failed_total[5m]))\n/\n"
                 f"sum by ({STAGE}) (rate(millstream_stage_processed_total[5m])"
                 " + rate(millstream_stage_failed_total[5m]))"},
    ]
    rules += [{"record": f"pipeline_stage:millstream_stage_handler_seconds:{name}",
               "expr": f"histogram_quantile({q}, sum by ({STAGE}, le) "
                       "(rate(millstream_stage_handler_seconds_bucket[5m])))"}
              for name, q in QUANTILES]
    return rules


def _group_rules() -> list[dict[str, str]]:
    rules = [{"record": group(g), "expr": f"max by ({GROUP}) (millstream_group_{g})"} for g in GROUP_GAUGES]
    rules += [{"record": f"pipeline_stream:millstream_stream_{s}:max",
               "expr": f"max by (pipeline, stream) (millstream_stream_{s})"} for s in STREAM_GAUGES]
    rules += [{"record": dlq(d), "expr": f"max by ({STAGE}) (millstream_dlq_{d})"} for d in DLQ_GAUGES]
    rules.append({
        "record": DRAIN,
        "expr": f"{group('lag_entries')}\n/ on (pipeline, group) group_left ()\n"
                f'label_replace({COMPLETED} > 0, "group", "$1", "stage", "(.*)")',
    })
    return rules


def _inference_rules() -> list[dict[str, str]]:
    return [
        {"record": "model:millstream_inference_requests:rate1m",
         "expr": "sum by (model) (rate(millstream_inference_latency_seconds_count[1m]))"},
        {"record": "model_kind:millstream_inference_errors:rate1m",
         "expr": "sum by (model, kind) (rate(millstream_inference_errors_total[1m]))"},
        {"record": "model:millstream_inference_retries:rate1m",
         "expr": "sum by (model) (rate(millstream_inference_retries_total[1m]))"},
        {"record": "model:millstream_inference_latency_seconds:p95",
         "expr": "histogram_quantile(0.95, sum by (model, le) "
                 "(rate(millstream_inference_latency_seconds_bucket[5m])))"},
        {"record": "model:millstream_inference_in_flight:sum",
         "expr": "sum by (model) (millstream_inference_in_flight)"},
        {"record": "model_batch_size:millstream_triton_batch_executions:rate5m",
         "expr": "sum by (model, batch_size) (rate(millstream_triton_batch_executions_total[5m]))"},
        {"record": "model:millstream_triton_batch_size:mean5m",
         "expr": "sum by (model) (rate(millstream_triton_inferences_total[5m]))\n/\n"
                 "sum by (model) (rate(millstream_triton_executions_total[5m]))"},
    ]


def rule_file() -> dict[str, Any]:
    """The recording rule file, one rule group per kind of figure."""
    return {"groups": [
        {"name": "millstream.recording.stages", "rules": _stage_rules()},
        {"name": "millstream.recording.groups", "rules": _group_rules()},
        {"name": "millstream.recording.inference", "rules": _inference_rules()},
    ]}


def names() -> list[str]:
    return [r["record"] for g in rule_file()["groups"] for r in g["rules"]]
