"""Kubernetes manifests of the image pipeline: a Deployment and a PodDisruptionBudget per stage,
Triton on a GPU, Redis with its append-only file, the exporter (docs/operations/kubernetes.md).

Names come from one place each: Deployments from ``deploy.keda.scaledobjects.deployment`` (so
the ScaledObjects target them), the Redis Service from the KEDA address in
deploy/thresholds.toml, the key namespace from the same file, the port and the grace period
from ``streams.settings.Settings``. Why the sizes and timings are what they are:
docs/decisions/0043-kubernetes-worker-pods.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploy.keda.scaledobjects import AUTH, NAMESPACE, deployment
from streams.settings import Settings

PIPELINE = "imgtr"
FACTORY = "processors.pipeline:build"
IMAGE = "millstream:0.1.0"  # built from the wheel with the pipeline extra: docs/operations/kubernetes.md
# Triton 2.51 (the version nvidia-pytriton 0.7.0 bundles) with the python backend and torch.
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-pyt-python-py3"
REDIS_IMAGE = "redis:7.2"
CONFIG = "millstream"
ACL_SECRET = "millstream-redis-acl"
WORKERS_SERVICE = "millstream-workers"  # headless: deploy/prometheus/prometheus.yml scrapes its A records
EXPORTER = "millstream-exporter"  # the Service deploy/prometheus/prometheus.yml scrapes
TRITON = "triton"
REDIS = "redis"
REDIS_PORT, TRITON_GRPC, TRITON_HTTP, TRITON_METRICS = 6379, 8001, 8000, 8002
DEFAULTS = Settings(consumer="-")
PORT = DEFAULTS.metrics_port
# SIGTERM → the hand-back and the grace period (Settings.shutdown_grace) → the final commits and
# leaving the group: the pod gets the grace plus this before the kubelet kills it.
SHUTDOWN_MARGIN = 15
MIB, GIB = 1024 * 1024, 1024 * 1024 * 1024
PART_OF = {"app.kubernetes.io/part-of": "millstream"}


@dataclass(frozen=True, slots=True)
class Worker:
    """One stage (or bridge) of the pipeline, run by its own Deployment."""

    stage: str
    memory_limit: int  # bytes: seed 002's per-worker limits, 4G for pixel work and 2G for the rest
    memory_request: int
    cpu_request: str
    env: tuple[tuple[str, str], ...] = ()
    scaled: bool = False  # a ScaledObject in deploy/keda/ owns the replica count
    volumes: bool = False  # writes result images

    @property
    def name(self) -> str:
        return deployment(PIPELINE, self.stage)


# A worker's memory budget (processors/images/memory_budget.py) is its limit less what it holds
# after start-up (interpreter, clients, an OCR process with its models: docs/MEMORY.md).
HEADROOM = 512 * MIB
WORKERS = (
    Worker("legacy-ingress", 2 * GIB, 256 * MIB, "100m"),
    Worker("ocr", 2 * GIB, 2 * GIB, "1", (("MILLSTREAM_OCR_THREADS", "1"),
                                          ("MILLSTREAM_OCR_MEMORY_BUDGET", str(2 * GIB - HEADROOM))),
           scaled=True),
    Worker("operate", 4 * GIB, 4 * GIB, "1", (("MILLSTREAM_OPERATE_MEMORY_BUDGET", str(4 * GIB - HEADROOM)),),
           scaled=True, volumes=True),
    Worker("results", 2 * GIB, 256 * MIB, "100m", scaled=True),
    Worker("results-errors", 2 * GIB, 256 * MIB, "100m"),
    Worker("legacy-success", 2 * GIB, 256 * MIB, "100m"),
    Worker("legacy-error", 2 * GIB, 256 * MIB, "100m"),
)


def _meta(name: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": {**PART_OF, **labels}}


def config(namespace: str) -> dict[str, Any]:
    """The settings every worker and the exporter share; the Redis URL (with its password) is a Secret."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(CONFIG), "data": {
        "MILLSTREAM_NAMESPACE": namespace,
        "MILLSTREAM_METRICS_HOST": "0.0.0.0",  # the scraper and the kubelet's probes are elsewhere
        "MILLSTREAM_METRICS_PORT": str(PORT),
        "MILLSTREAM_HEARTBEAT_TTL": f"{DEFAULTS.heartbeat_ttl:g}",
        "MILLSTREAM_SHUTDOWN_GRACE": f"{DEFAULTS.shutdown_grace:g}",
        "MILLSTREAM_TRITON_URL": f"{TRITON}:{TRITON_GRPC}",
        "MILLSTREAM_STORE_DIR": "/var/lib/millstream/images",
        "MILLSTREAM_PUBLIC_URL": "https://images.example.com/",
        "MILLSTREAM_LOG_LEVEL": "INFO",
    }}


def _env() -> list[dict[str, Any]]:
    return [
        # A stable consumer name per pod: a restarted container re-reads its own pending entries.
        {"name": "MILLSTREAM_CONSUMER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MILLSTREAM_REDIS_URL", "valueFrom": {"secretKeyRef": {"name": AUTH, "key": "url"}}},
    ]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "metrics"}, "periodSeconds": period, "timeoutSeconds": 2,
            "failureThreshold": failures}


def grace_period() -> int:
    return int(DEFAULTS.shutdown_grace) + SHUTDOWN_MARGIN


# The hand-back is the worker's SIGTERM path (streams/service/worker.py): reading stops, unstarted
# entries go back to their stream at once, handlers get the grace period, the rest is handed back.
# The hook starts it and waits for the worker to exit; the kubelet counts the hook's time in
# terminationGracePeriodSeconds and sends its own SIGTERM only after it (decision 0043).
PRESTOP = ["/bin/sh", "-c", "kill -TERM 1; while kill -0 1 2>/dev/null; do sleep 1; done"]


def _worker_container(w: Worker) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "worker", "image": IMAGE,
        "command": ["millstream", "worker", FACTORY, "--stage", w.stage],
        "envFrom": [{"configMapRef": {"name": CONFIG}}],
        "env": _env() + [{"name": k, "value": v} for k, v in w.env],
        "ports": [{"name": "metrics", "containerPort": PORT}],
        "resources": {"requests": {"cpu": w.cpu_request, "memory": str(w.memory_request)},
                      "limits": {"memory": str(w.memory_limit)}},
        # Until joined (group, fence token, first heartbeat): up to 2 minutes (an OCR pool, a cold Redis).
        "startupProbe": _probe("/readyz", 2, 60),
        "readinessProbe": _probe("/readyz", 5, 1),
        # A minute of Redis silence or a hung loop, not one missed PING (decision 0042).
        "livenessProbe": _probe("/healthz", 10, 6),
        "lifecycle": {"preStop": {"exec": {"command": PRESTOP}}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if w.volumes:
        container["volumeMounts"].append({"name": "images", "mountPath": "/var/lib/millstream/images"})
    return container


def worker_deployment(w: Worker) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": w.name, "app.kubernetes.io/component": "worker",
              "millstream/pipeline": PIPELINE, "millstream/stage": w.stage}
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if w.volumes:
        volumes.append({"name": "images", "persistentVolumeClaim": {"claimName": "millstream-images"}})
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app.kubernetes.io/name": w.name}},
        # One new pod before an old one goes: a stage never drops to zero consumers in a rollout.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": {**PART_OF, **labels}},
            "spec": {
                "terminationGracePeriodSeconds": grace_period(),
                "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
                "containers": [_worker_container(w)],
                "volumes": volumes,
            },
        },
    }
    if not w.scaled:
        spec = {"replicas": 1, **spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(w.name, **labels), "spec": spec}


def disruption_budget(w: Worker) -> dict[str, Any]:
    """At most one pod of the stage evicted at a time: a drain proceeds, a stage keeps most consumers."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(w.name),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": w.name}}}}


def workers_service() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(WORKERS_SERVICE),
            "spec": {"clusterIP": "None", "selector": {**PART_OF, "app.kubernetes.io/component": "worker"},
                     "ports": [{"name": "metrics", "port": PORT, "targetPort": "metrics"}]}}


def images_claim() -> dict[str, Any]:
    """Result images: every operate pod writes, whatever serves MILLSTREAM_PUBLIC_URL reads."""
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta("millstream-images"),
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}}}
