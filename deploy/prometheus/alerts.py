"""Alert rules over millstream's metrics, built from ``deploy/thresholds.toml``.

Each alert is one function from its settings to ``(expr, summary, description)``.
Group alerts carry the labels ``pipeline, stream, group`` (the group is the
stage), stage alerts ``pipeline, stage``, Triton alerts ``model``. Every alert
gets ``severity`` and a ``runbook_url`` to its section of docs/OPERATIONS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deploy.prometheus.recording import GROUP, STAGE, dlq, group
from deploy.thresholds import Alert, Thresholds, duration

Built = tuple[str, str, str]
WHERE = "{{ $labels.pipeline }}/{{ $labels.group }}"
STAGE_WHERE = "{{ $labels.pipeline }}/{{ $labels.stage }}"
UNREACHABLE_KINDS = "unavailable|circuit_open"
DEGRADED_KINDS = "overloaded|deadline"


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def lag_entries_high(a: Alert) -> Built:
    return (f"{group('lag_entries')} > {number(a.threshold())}",
            f"{WHERE}: {{{{ $value | humanize }}}} entries waiting",
            f"Stage {{{{ $labels.group }}}} of pipeline {{{{ $labels.pipeline }}}} has more than "
            f"{number(a.threshold())} entries of stream {{{{ $labels.stream }}}} not yet delivered "
            f"(now {{{{ $value | humanize }}}}) for {a.for_}.")


def lag_seconds_high(a: Alert) -> Built:
    return (f"{group('lag_seconds')} > {number(a.threshold())}",
            f"{WHERE}: oldest waiting entry is {{{{ $value | humanizeDuration }}}} old",
            f"The oldest entry of stream {{{{ $labels.stream }}}} not yet delivered to stage "
            f"{{{{ $labels.group }}}} was published {{{{ $value | humanizeDuration }}}} ago "
            f"(threshold {duration(a.threshold())}, for {a.for_}). Tasks are late by at least that much.")


def lag_growing(a: Alert) -> Built:
    lag = group("lag_entries")
    return (f"deriv({lag}[{a.window}]) > 0\nand\n{lag} > {number(a.numbers['min_entries'])}",
            f"{WHERE}: lag grows by {{{{ $value | humanize }}}} entries/s",
            f"The lag of stage {{{{ $labels.group }}}} on stream {{{{ $labels.stream }}}} has grown for "
            f"{a.for_} (over {number(a.numbers['min_entries'])} entries, trend over {a.window}): "
            "producers publish faster than the stage finishes.")


def pipeline_stalled(a: Alert) -> Built:
    finished = "\n    + ".join(f"increase(millstream_stage_{c}_total[{a.window}])"
                               for c in ("processed", "error_records", "dead_lettered"))
    return (f"{group('lag_entries')} > 0\nunless on (pipeline, group)\nlabel_replace(\n"
            f"  sum by ({STAGE}) (\n    {finished}\n  ) > 0,\n"
            '  "group", "$1", "stage", "(.*)"\n)',
            f"{WHERE}: backlog and nothing finished for {a.window}",
            f"Stage {{{{ $labels.group }}}} has {{{{ $value | humanize }}}} entries waiting on "
            f"{{{{ $labels.stream }}}} and no consumer finished an entry in {a.window} (for {a.for_}).")


def _deadlines(a: Alert) -> str:
    """The stage deadline as a series per (pipeline, group): overrides, else the default."""
    oldest = group("oldest_pending_seconds")
    overrides = [
        f'label_replace(label_replace(vector({number(s)}), "pipeline", "{key.split("/")[0]}", "", ""),'
        f' "group", "{key.split("/")[1]}", "", "")'
        for key, s in sorted(a.stages.items())
    ]
    default = f"group by (pipeline, group) ({oldest}) * {number(a.threshold())}"
    return "\n  or on (pipeline, group)\n  ".join([*overrides, f"({default})"])


def pending_stuck(a: Alert) -> Built:
    oldest = group("oldest_pending_seconds")
    if a.stages:
        expr = f"{oldest}\n> on (pipeline, group) group_left ()\n(\n  {_deadlines(a)}\n)"
    else:
        expr = f"{oldest} > {number(a.threshold())}"
    return (expr,
            f"{WHERE}: an entry has been pending for {{{{ $value | humanizeDuration }}}}",
            f"The oldest entry delivered to stage {{{{ $labels.group }}}} and not acknowledged has been "
            f"idle for {{{{ $value | humanizeDuration }}}}, past the stage's deadline "
            f"({duration(a.threshold())} unless set per stage): no consumer renews or reclaims it.")


def no_live_consumer(a: Alert) -> Built:
    return (f"{group('live_consumers')} == 0\nand on ({GROUP})\n"
            f"({group('lag_entries')} + {group('pending')} > 0)",
            f"{WHERE}: backlog and no live consumer",
            f"Stage {{{{ $labels.group }}}} has entries waiting or pending on {{{{ $labels.stream }}}} "
            f"and no consumer with a live heartbeat for {a.for_}. Nothing will process them.")


def dead_letters_growing(a: Alert) -> Built:
    t = number(a.threshold())
    length = dlq("length")
    return (f"{length} - min_over_time({length}[{a.window}]) >= {t}\nor\n"
            f"sum by ({STAGE}) (increase(millstream_stage_dead_lettered_total[{a.window}])) >= {t}",
            f"{STAGE_WHERE}: new dead letters",
            f"Stage {{{{ $labels.stage }}}} of pipeline {{{{ $labels.pipeline }}}} dead-lettered about "
            f"{{{{ $value | humanize }}}} entries in the last {a.window}: they failed max_attempts "
            "times, or their consumers kept dying (crash_limit).")


def dead_letters_unattended(a: Alert) -> Built:
    return (f"{dlq('oldest_seconds')} > {number(a.threshold())}",
            f"{STAGE_WHERE}: dead letters waiting for {{{{ $value | humanizeDuration }}}}",
            f"The oldest dead letter of stage {{{{ $labels.stage }}}} is {{{{ $value | humanizeDuration }}}} "
            f"old (threshold {duration(a.threshold())}): replay or purge them.")


def error_ratio_high(a: Alert) -> Built:
    attempts = (f"sum by ({STAGE}) (rate(millstream_stage_processed_total[{a.window}])"
                f" + rate(millstream_stage_failed_total[{a.window}]))")
    return (f"(\n  sum by ({STAGE}) (rate(millstream_stage_failed_total[{a.window}]))\n  /\n  {attempts}\n)"
            f" > {number(a.threshold())}\nand on ({STAGE})\n{attempts} >= {number(a.numbers['min_rate'])}",
            f"{STAGE_WHERE}: {{{{ $value | humanizePercentage }}}} of attempts fail",
            f"{{{{ $value | humanizePercentage }}}} of handler attempts of stage {{{{ $labels.stage }}}} "
            f"failed over {a.window} (threshold {a.threshold():.0%}, for {a.for_}).")


PER_REQUEST = '{{ $value | printf "%.2f" }} failed attempts per request'


def _inference_ratio(a: Alert, kinds: str) -> str:
    return (f'sum by (model) (rate(millstream_inference_errors_total{{kind=~"{kinds}"}}[{a.window}]))\n/\n'
            f"sum by (model) (rate(millstream_inference_latency_seconds_count[{a.window}]))\n"
            f"> {number(a.threshold())}")


def triton_unreachable(a: Alert) -> Built:
    return (_inference_ratio(a, UNREACHABLE_KINDS),
            "Triton unreachable for model {{ $labels.model }}",
            f"Inference attempts for model {{{{ $labels.model }}}} fail as unavailable or circuit_open "
            f"({PER_REQUEST} over {a.window}, for {a.for_}): "
            "workers cannot reach Triton.")


def triton_degraded(a: Alert) -> Built:
    return (_inference_ratio(a, DEGRADED_KINDS),
            "Triton overloaded or slow for model {{ $labels.model }}",
            f"Inference attempts for model {{{{ $labels.model }}}} fail as overloaded or deadline "
            f"({PER_REQUEST} over {a.window}, for {a.for_}).")


def exporter_down(job: str) -> Callable[[Alert], Built]:
    def build(a: Alert) -> Built:
        return (f'up{{job="{job}"}} == 0\nor\nabsent(up{{job="{job}"}})',
                "millstream exporter is not scraped",
                f"Prometheus has not scraped job {job} for {a.for_}. Lag of stages with no "
                "running worker is invisible, and group alerts cannot fire.")
    return build


def builders(thresholds: Thresholds) -> dict[str, Callable[[Alert], Built]]:
    return {
        "MillstreamLagEntriesHigh": lag_entries_high,
        "MillstreamLagSecondsHigh": lag_seconds_high,
        "MillstreamLagGrowing": lag_growing,
        "MillstreamPipelineStalled": pipeline_stalled,
        "MillstreamPendingStuck": pending_stuck,
        "MillstreamNoLiveConsumer": no_live_consumer,
        "MillstreamDeadLettersGrowing": dead_letters_growing,
        "MillstreamDeadLettersUnattended": dead_letters_unattended,
        "MillstreamErrorRatioHigh": error_ratio_high,
        "MillstreamTritonUnreachable": triton_unreachable,
        "MillstreamTritonDegraded": triton_degraded,
        "MillstreamExporterDown": exporter_down(thresholds.exporter_job),
    }


def rule_file(thresholds: Thresholds) -> dict[str, Any]:
    """The alert rule file; every alert of the thresholds needs a builder and vice versa."""
    build = builders(thresholds)
    if set(build) != set(thresholds.alerts):
        raise ValueError(f"alerts without settings or rules: {sorted(set(build) ^ set(thresholds.alerts))}")
    rules = []
    for name, alert in thresholds.alerts.items():
        expr, summary, description = build[name](alert)
        rules.append({
            "alert": name, "expr": expr, "for": alert.for_,
            "labels": {"severity": alert.severity},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": thresholds.runbook_url(name)},
        })
    return {"groups": [{"name": "millstream.alerts", "rules": rules}]}
