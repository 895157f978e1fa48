"""deploy/kubernetes/ and deploy/compose.yaml: valid against their schemas, and every name in them exists.

Kubernetes manifests are checked with kubernetes-validate (the API's own JSON schemas, offline),
the compose file with the Compose Specification's schema as check-jsonschema ships it. The
names: each KEDA target is a Deployment of these files in the same namespace, reading the
stream its trigger watches; each probe's port is a declared container port and the one
MILLSTREAM_METRICS_PORT names; each MILLSTREAM_* variable is a settings field, with a value
that settings accept.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from deploy.kubernetes import manifests, render
from deploy.thresholds import load as load_thresholds
from streams.service.endpoint import HEALTH_PATHS
from streams.settings import Settings, check_unknown, from_env, load, registered_sections
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
KEDA = ROOT / "deploy" / "keda"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes these manifests promise to apply to


def need(module: str) -> ModuleType:
    """Import a dev dependency; skip locally but fail in CI when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"{module} is not installed (a dev dependency: pip install -e '.[dev]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def documents(*folders: Path) -> list[dict[str, Any]]:
    return [doc for folder in folders for path in sorted(folder.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in {"Deployment", "StatefulSet"}:
            pod = d["spec"]["template"]["spec"]
            for c in pod.get("initContainers", []) + pod["containers"]:
                yield d["metadata"]["name"], c


def config_data() -> dict[str, str]:
    return dict(of_kind(documents(KUBERNETES), "ConfigMap")[manifests.CONFIG]["data"])


def compose_file() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text()))


# -- the files -----------------------------------------------------------------------------------

def test_the_generated_files_are_up_to_date():
    assert render.main(["--check"]) == 0, "run: python -m deploy.kubernetes.render"


def test_every_manifest_is_valid_against_the_kubernetes_schemas():
    kv = need("kubernetes_validate")
    docs = documents(KUBERNETES)
    assert {d["kind"] for d in docs} >= {"Namespace", "ConfigMap", "Deployment", "StatefulSet", "Service",
                                         "PodDisruptionBudget", "PersistentVolumeClaim"}
    for doc in docs:
        kv.validate(doc, K8S_VERSION, strict=True)


def test_the_kubernetes_validator_refuses_a_misspelt_field():
    kv = need("kubernetes_validate")
    deployment = next(iter(of_kind(documents(KUBERNETES), "Deployment").values()))
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, K8S_VERSION, strict=True)


def compose_validator() -> Any:
    jsonschema = need("jsonschema")
    need("check_jsonschema")
    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def test_the_compose_file_is_valid_against_the_compose_specification():
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in compose_validator().iter_errors(compose_file())]
    assert errors == []


def test_the_compose_schema_refuses_a_misspelt_key():
    broken = compose_file()
    broken["services"]["ocr"]["stop_grace"] = "45s"
    assert list(compose_validator().iter_errors(broken))


# -- names that must exist ---------------------------------------------------------------------------

async def test_there_is_one_deployment_and_one_disruption_budget_per_stage_and_bridge():
    from processors.pipeline import build

    pipeline = build(Settings(consumer="-"))
    for close in pipeline.on_stop:
        await close()
    parts = {s.name for s in pipeline.stages} | {b.name for b in pipeline.bridges}
    docs = documents(KUBERNETES)
    deployments, budgets = of_kind(docs, "Deployment"), of_kind(docs, "PodDisruptionBudget")
    run = {d["spec"]["template"]["spec"]["containers"][0]["command"][-1]: name for name, d in deployments.items()
           if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"}
    assert set(run) == parts
    for stage, name in run.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), f"the budget of {stage} selects its pods"
        assert deployments[name]["spec"]["selector"]["matchLabels"] == selector


def test_every_keda_target_is_a_deployment_in_its_namespace_reading_the_watched_stream():
    docs = documents(KUBERNETES)
    deployments = of_kind(docs, "Deployment")
    scaling = load_thresholds().scaling
    scaled = of_kind(documents(KEDA), "ScaledObject")
    assert scaled
    for name, obj in scaled.items():
        target = deployments.get(obj["spec"]["scaleTargetRef"]["name"])
        assert target is not None, f"{name} targets a Deployment that deploy/kubernetes does not declare"
        assert obj["metadata"]["namespace"] == target["metadata"]["namespace"]
        assert "replicas" not in target["spec"], "KEDA owns the replica count of a scaled Deployment"
        trigger = obj["spec"]["triggers"][0]["metadata"]
        stage = target["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        assert trigger["consumerGroup"] == stage
        source = scaling[manifests.PIPELINE][stage]["source"]
        assert trigger["stream"] == f"{config_data()['MILLSTREAM_NAMESPACE']}:{{{manifests.PIPELINE}}}:stream:{source}"
    auth = of_kind(documents(KEDA), "TriggerAuthentication")
    assert {a["metadata"]["namespace"] for a in auth.values()} == {manifests.NAMESPACE}


def test_keda_and_prometheus_reach_the_services_these_files_declare():
    services = of_kind(documents(KUBERNETES), "Service")
    redis = services[manifests.REDIS]
    address = f"{manifests.REDIS}.{manifests.NAMESPACE}.svc.cluster.local:{redis['spec']['ports'][0]['port']}"
    assert load_thresholds().scaling["redis_address"] == address
    prometheus = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    assert f"{manifests.WORKERS_SERVICE}.{manifests.NAMESPACE}.svc.cluster.local" in prometheus
    assert f"{manifests.EXPORTER}.{manifests.NAMESPACE}.svc:{manifests.PORT}" in prometheus
    assert manifests.WORKERS_SERVICE in services and manifests.EXPORTER in services


def test_every_probe_uses_a_declared_port_and_workers_probe_their_metrics_port():
    metrics_port = int(config_data()["MILLSTREAM_METRICS_PORT"])
    for owner, c in containers(documents(KUBERNETES)):
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind not in c:
                continue
            check = c[kind].get("httpGet") or c[kind].get("tcpSocket")
            if check is None:
                continue
            port = check["port"]
            assert port in ports or port in ports.values(), f"{owner}: {kind} probes an undeclared port {port}"
        if "envFrom" in c:  # a millstream process: its probes read the endpoint on MILLSTREAM_METRICS_PORT
            assert ports["metrics"] == metrics_port, owner
            paths = {c[k]["httpGet"]["path"] for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in c}
            assert paths <= set(HEALTH_PATHS) | {"/metrics"}, owner


def millstream_envs() -> Iterator[tuple[str, dict[str, str]]]:
    """(where, the MILLSTREAM_* variables a process gets) for each millstream process of both files."""
    data = config_data()
    for owner, c in containers(documents(KUBERNETES)):
        if "envFrom" in c:
            env = {**data, **{e["name"]: e.get("value", "from-a-reference") for e in c.get("env", [])}}
            env["MILLSTREAM_REDIS_URL"] = "redis://u:p@redis:6379/0"  # the Secret's, by reference
            yield f"kubernetes {owner}", env
    for name, service in compose_file()["services"].items():
        env = service.get("environment", {})
        if any(k.startswith("MILLSTREAM_") for k in env):
            yield f"compose {name}", env


def test_every_millstream_variable_is_a_setting_and_its_value_is_accepted():
    sections = registered_sections()
    seen = 0
    for where, env in millstream_envs():
        check_unknown(env, [Settings, *sections])  # raises naming an unknown variable
        from_env(env)
        for cls in sections:
            load(cls, env)
        seen += 1
        assert env["MILLSTREAM_METRICS_HOST"] == "0.0.0.0", where
    assert seen >= len(manifests.WORKERS) * 2


def test_variable_names_are_checked_so_a_typo_would_fail():
    with pytest.raises(Exception, match="MILLSTREAM_SHUTDOWN_GRAC"):
        check_unknown({"MILLSTREAM_SHUTDOWN_GRAC": "30"}, [Settings, *registered_sections()])


# -- shutdown, memory, GPU, durability ---------------------------------------------------------------

def seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, text
    return int(match.group(1))


def test_pods_outlive_the_shutdown_grace_and_hand_back_before_they_go():
    grace = float(config_data()["MILLSTREAM_SHUTDOWN_GRACE"])
    for name, d in of_kind(documents(KUBERNETES), "Deployment").items():
        if d["metadata"]["labels"].get("app.kubernetes.io/component") != "worker":
            continue
        pod = d["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > grace, name
        assert pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == manifests.PRESTOP
    for w in manifests.WORKERS:
        assert seconds(compose_file()["services"][w.stage]["stop_grace_period"]) > grace


def test_memory_limits_follow_the_seed_classes_and_budgets_fit_inside_them():
    deployments = of_kind(documents(KUBERNETES), "Deployment")
    units = {"M": 1 << 20}
    for w in manifests.WORKERS:
        c = deployments[w.name]["spec"]["template"]["spec"]["containers"][0]
        limit = int(c["resources"]["limits"]["memory"])
        assert limit in {2 << 30, 4 << 30}, "seed 002: 4G for pixel work, 2G for the others"
        budgets = [int(e["value"]) for e in c["env"] if e["name"].endswith("_MEMORY_BUDGET")]
        assert all(b <= limit - manifests.HEADROOM for b in budgets), w.stage
        compose_limit = compose_file()["services"][w.stage]["deploy"]["resources"]["limits"]["memory"]
        assert int(compose_limit[:-1]) * units[compose_limit[-1]] == limit
    heavy = {w.stage for w in manifests.WORKERS if w.memory_limit == 4 << 30}
    assert heavy == {"operate"}


def test_triton_gets_a_gpu_and_the_gpu_config_of_every_model():
    triton = of_kind(documents(KUBERNETES), "Deployment")[manifests.TRITON]
    server = triton["spec"]["template"]["spec"]["containers"][0]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "--model-config-name=gpu" in server["command"]
    models = [p.parent for p in (ROOT / "triton_models").glob("*/config.pbtxt")]
    assert models and all((m / "configs" / "gpu.pbtxt").exists() for m in models)
    compose = compose_file()["services"]["triton"]
    assert "--model-config-name=gpu" in compose["command"]
    assert compose["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_redis_keeps_an_append_only_file_and_never_evicts():
    redis = of_kind(documents(KUBERNETES), "StatefulSet")[manifests.REDIS]
    args = " ".join(redis["spec"]["template"]["spec"]["containers"][0]["args"])
    for command in (args, " ".join(compose_file()["services"]["redis"]["command"])):
        assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
