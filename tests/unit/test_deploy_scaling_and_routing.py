"""KEDA scales each stage on its group's lag; Alertmanager and Prometheus configs are valid."""

from __future__ import annotations

import subprocess

from deploy.keda.scaledobjects import manifests
from deploy.render import DEPLOY
from deploy.thresholds import load
from streams.redis.keys import Keys
from tests.conftest import require_tool

IMGTR_SOURCES = {"ocr": "tasks", "operate": "ocr", "results": "success"}


def test_each_imgtr_stage_scales_on_its_groups_lag_with_at_least_one_replica():
    scaling = load().scaling
    objects = [m for m in manifests(scaling, "imgtr") if m["kind"] == "ScaledObject"]
    assert {o["metadata"]["labels"]["millstream/stage"] for o in objects} == set(IMGTR_SOURCES)
    for o in objects:
        stage = o["metadata"]["labels"]["millstream/stage"]
        [trigger] = o["spec"]["triggers"]
        assert trigger["type"] == "redis-streams"
        assert trigger["metadata"]["stream"] == Keys(scaling["namespace"], "imgtr").stream(IMGTR_SOURCES[stage])
        assert trigger["metadata"]["consumerGroup"] == stage
        assert int(trigger["metadata"]["lagCount"]) > 0 and "pendingEntriesCount" not in trigger["metadata"]
        assert "activationLagCount" in trigger["metadata"]  # KEDA requires it in lag mode
        assert o["spec"]["minReplicaCount"] >= 1
        assert o["spec"]["maxReplicaCount"] >= o["spec"]["minReplicaCount"]
        assert o["spec"]["scaleTargetRef"]["name"] == f"millstream-imgtr-{stage}"


def test_the_keda_manifest_names_the_stream_keys_of_the_keyspace():
    text = (DEPLOY / "keda" / "imgtr.yaml").read_text()
    for source in IMGTR_SOURCES.values():
        assert f"stream: 'ms:{{imgtr}}:stream:{source}'" in text


def test_amtool_accepts_the_alertmanager_template():
    done = subprocess.run([require_tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_example_prometheus_configuration():
    done = subprocess.run([require_tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
