"""The Prometheus rules: generated from one source, accepted and unit-tested by promtool."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from deploy import _yaml
from deploy.catalogue import BUILTIN, inference_metrics, names_in, stream_metrics
from deploy.prometheus import alerts, recording
from deploy.render import RULES, rule_files, stale
from deploy.thresholds import duration, load, seconds
from tests.conftest import require_tool

PROMTOOL_TESTS = RULES.parent / "tests"


def all_rules() -> list[dict[str, str]]:
    files = [recording.rule_file(), alerts.rule_file(load())]
    return [rule for f in files for g in f["groups"] for rule in g["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=60)


def test_generated_files_match_the_thresholds_source():
    assert stale(load()) == [], "run: .venv/bin/python -m deploy.render"


def test_promtool_accepts_the_rule_files():
    done = promtool("check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_the_rules_pass():
    done = promtool("test", "rules", *map(str, sorted(PROMTOOL_TESTS.glob("*.yml"))))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook():
    rules = alerts.rule_file(load())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == set(load().alerts)
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        assert rule["annotations"]["runbook_url"].endswith(f"OPERATIONS.md#{rule['alert'].lower()}")


def is_inference(name: str) -> bool:
    return name.startswith(("millstream_inference_", "millstream_triton_"))


def test_rules_read_only_millstream_metrics_recorded_series_and_prometheus_builtins():
    known = stream_metrics() | set(recording.names()) | BUILTIN
    for rule in all_rules():
        unknown = {n for n in names_in(rule["expr"]) - known if not is_inference(n)}
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}"


def test_inference_rules_read_metrics_the_inference_client_exposes():
    pytest.importorskip("processors.inference.metrics")
    exposed = inference_metrics()
    for rule in all_rules():
        wanted = {n for n in names_in(rule["expr"]) if is_inference(n)}
        assert wanted <= exposed, f"{rule.get('alert') or rule.get('record')} reads {wanted - exposed}"


def test_scaled_thresholds_shorten_durations_and_keep_windows_at_least_five_seconds():
    production, fast = load(), load().scaled(0.01)
    lag = fast.alerts["MillstreamLagSecondsHigh"]
    assert (lag.threshold(), lag.for_) == (3.0, "3s")
    assert fast.alerts["MillstreamErrorRatioHigh"].window == "5s"  # 5m * 0.01 = 3s, raised to 5s
    assert fast.alerts["MillstreamLagGrowing"].window == "9s"
    assert fast.alerts["MillstreamLagEntriesHigh"].threshold() == production.alerts[
        "MillstreamLagEntriesHigh"].threshold()  # quantities are not durations


@pytest.mark.parametrize("text", ["90s", "5m", "2h", "2d", "1w", "300ms"])
def test_durations_are_read_and_written_back_alike(text: str):
    assert duration(seconds(text)) == text


def test_a_malformed_threshold_is_refused_naming_the_alert(tmp_path: Path):
    bad = tmp_path / "thresholds.toml"
    bad.write_text('runbook_base_url = "x"\nexporter_job = "j"\n[scaling]\n'
                   '[alerts.MillstreamLagSecondsHigh]\nseverity = "critical"\nthreshold = "5 minutes"\n')
    with pytest.raises(ValueError, match="5 minutes"):
        load(bad)


def test_a_stage_deadline_set_in_the_source_changes_only_that_stages_stuck_alert(tmp_path: Path):
    thresholds = load()
    stuck = thresholds.alerts["MillstreamPendingStuck"]
    thresholds = dataclasses.replace(thresholds, alerts={
        **thresholds.alerts,
        "MillstreamPendingStuck": dataclasses.replace(stuck, stages={"imgtr/operate": 1200.0}),
    })
    (tmp_path / "millstream-recording.yml").write_text(rule_files(thresholds)["millstream-recording.yml"])
    stuck_rules = alerts.rule_file(thresholds)
    for rule in stuck_rules["groups"][0]["rules"]:
        del rule["annotations"]  # this test compares labels only
    (tmp_path / "millstream-alerts.yml").write_text(_yaml.dump(stuck_rules))
    series = 'millstream_group_oldest_pending_seconds{{pipeline="imgtr",stream="{}",group="{}"}}'
    test = {
        "rule_files": ["millstream-recording.yml", "millstream-alerts.yml"],
        "evaluation_interval": "1m",
        "group_eval_order": [g["name"] for g in recording.rule_file()["groups"]] + ["millstream.alerts"],
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": series.format("ocr", "operate"), "values": "900x20"},
                             {"series": series.format("tasks", "ocr"), "values": "900x20"}],
            "alert_rule_test": [{"eval_time": "10m", "alertname": "MillstreamPendingStuck", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "pipeline": "imgtr", "stream": "tasks", "group": "ocr"}},
            ]}],
        }],
    }
    (tmp_path / "test.yml").write_text(_yaml.dump(test))
    done = promtool("test", "rules", str(tmp_path / "test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
