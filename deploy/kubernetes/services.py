"""The parts beside the workers: Redis (StatefulSet, append-only file), Triton on a GPU, the exporter."""

from __future__ import annotations

from typing import Any

from deploy.kubernetes.manifests import (
    ACL_SECRET,
    CONFIG,
    EXPORTER,
    IMAGE,
    NAMESPACE,
    PART_OF,
    PORT,
    REDIS,
    REDIS_IMAGE,
    REDIS_PORT,
    TRITON,
    TRITON_GRPC,
    TRITON_HTTP,
    TRITON_IMAGE,
    TRITON_METRICS,
    _env,
    _meta,
)

# Redis: every acknowledged write survives a restart up to the last second (appendfsync everysec),
# and a full Redis refuses writes instead of evicting keys: eviction would drop entries.
REDIS_ARGS = ["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
              "--dir", "/data", "--aclfile", "/etc/redis/acl/users.acl"]
# The model repository ships in the millstream image (package triton_models); without __pycache__,
# which Triton would read as a model.
COPY_MODELS = ("import shutil, triton_models, pathlib; "
               "shutil.copytree(pathlib.Path(triton_models.__path__[0]), '/models', dirs_exist_ok=True, "
               "ignore=shutil.ignore_patterns('__pycache__'))")


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": PART_OF}}


def _service(name: str, ports: list[tuple[str, int]], headless: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app.kubernetes.io/name": name},
                            "ports": [{"name": n, "port": p, "targetPort": n} for n, p in ports]}
    if headless:
        spec = {"clusterIP": "None", **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name), "spec": spec}


def redis() -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": REDIS}
    container = {
        "name": "redis", "image": REDIS_IMAGE, "command": ["redis-server"], "args": REDIS_ARGS,
        "ports": [{"name": "redis", "containerPort": REDIS_PORT}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
        # TCP: the default user is off (docs/operations/redis-acl.md), so a probe could not PING.
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10, "failureThreshold": 6},
        "volumeMounts": [{"name": "data", "mountPath": "/data"},
                         {"name": "acl", "mountPath": "/etc/redis/acl", "readOnly": True}],
    }
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(REDIS, **labels),
        "spec": {
            "serviceName": REDIS, "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": {**PART_OF, **labels}}, "spec": {
                # Redis rewrites and fsyncs the AOF on SIGTERM before it exits.
                "terminationGracePeriodSeconds": 60,
                "containers": [container],
                "volumes": [{"name": "acl", "secret": {"secretName": ACL_SECRET}}],
            }},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}}],
        },
    }
    return [_service(REDIS, [("redis", REDIS_PORT)], headless=True), statefulset]


def triton() -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": TRITON}
    health = {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 5}
    server = {
        "name": "tritonserver", "image": TRITON_IMAGE,
        "command": ["tritonserver", "--model-repository=/models", "--model-config-name=gpu",
                    "--strict-readiness=true", "--exit-on-error=true"],
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        "ports": [{"name": n, "containerPort": p}
                  for n, p in (("http", TRITON_HTTP), ("grpc", TRITON_GRPC), ("metrics", TRITON_METRICS))],
        "resources": {"requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
                      "limits": {"memory": "8Gi", "nvidia.com/gpu": "1"}},
        "startupProbe": {**health, "failureThreshold": 60},
        "readinessProbe": health,
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "periodSeconds": 10,
                          "failureThreshold": 3},
        "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True},
                         {"name": "shm", "mountPath": "/dev/shm"}],
    }
    copy = {"name": "models", "image": IMAGE, "command": ["python", "-c", COPY_MODELS],
            "volumeMounts": [{"name": "models", "mountPath": "/models"}]}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(TRITON, **labels),
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": {**PART_OF, **labels}}, "spec": {
                "initContainers": [copy], "containers": [server],
                # The python backend passes tensors to its stubs through shared memory.
                "volumes": [{"name": "models", "emptyDir": {}},
                            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}],
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            }}},
    }
    return [_service(TRITON, [("http", TRITON_HTTP), ("grpc", TRITON_GRPC), ("metrics", TRITON_METRICS)]),
            deployment]


def exporter() -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": EXPORTER}
    probe = {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 15, "failureThreshold": 4}
    container = {
        "name": "exporter", "image": IMAGE, "command": ["millstream", "exporter"],
        "envFrom": [{"configMapRef": {"name": CONFIG}}], "env": _env(),
        "ports": [{"name": "metrics", "containerPort": PORT}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "readinessProbe": probe, "livenessProbe": probe,
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(EXPORTER, **labels),
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": {**PART_OF, **labels}},
            "spec": {"securityContext": {"runAsUser": 10001, "runAsNonRoot": True},
                     "containers": [container]}}},
    }
    return [_service(EXPORTER, [("metrics", PORT)]), deployment]
