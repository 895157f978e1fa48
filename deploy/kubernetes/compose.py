"""deploy/compose.yaml: the same parts as the Kubernetes manifests, on one machine.

One service per stage (``docker compose up --scale ocr=2`` adds consumers), Triton on the
machine's GPU, Redis with its append-only file on a named volume, the exporter. Settings,
memory limits and grace periods are those of deploy/kubernetes (same ``Worker`` table).
"""

from __future__ import annotations

from typing import Any

from deploy.kubernetes import manifests as k8s
from deploy.kubernetes.services import COPY_MODELS

PROBE = ("import sys, urllib.request; "
         f"urllib.request.urlopen('http://127.0.0.1:{k8s.PORT}/readyz', timeout=2)")


def environment(namespace: str) -> dict[str, str]:
    env = dict(k8s.config(namespace)["data"])
    env["MILLSTREAM_TRITON_URL"] = f"triton:{k8s.TRITON_GRPC}"
    env["MILLSTREAM_REDIS_URL"] = f"redis://redis:{k8s.REDIS_PORT}/0"
    env["MILLSTREAM_PUBLIC_URL"] = "http://127.0.0.1:8080/"
    return env


def _memory(size: int) -> str:
    return f"{size // (1024 * 1024)}M"


def worker(w: k8s.Worker, namespace: str) -> dict[str, Any]:
    service: dict[str, Any] = {
        "image": k8s.IMAGE,
        "command": ["millstream", "worker", k8s.FACTORY, "--stage", w.stage],
        "environment": {**environment(namespace), **dict(w.env)},
        "restart": "unless-stopped",
        # Docker sends SIGTERM (the hand-back), then SIGKILL after this: above the shutdown grace.
        "stop_grace_period": f"{k8s.grace_period()}s",
        "deploy": {"resources": {"limits": {"memory": _memory(w.memory_limit)}}},
        "healthcheck": {"test": ["CMD", "python", "-c", PROBE], "interval": "10s", "timeout": "3s",
                        "retries": 6, "start_period": "120s"},
        "depends_on": {"redis": {"condition": "service_started"}},
    }
    if w.volumes:
        service["volumes"] = ["images:/var/lib/millstream/images"]
        service["depends_on"]["triton"] = {"condition": "service_healthy"}
    return service


def compose(namespace: str) -> dict[str, Any]:
    services: dict[str, Any] = {
        "redis": {
            "image": k8s.REDIS_IMAGE, "restart": "unless-stopped",
            "command": ["redis-server", "--appendonly", "yes", "--appendfsync", "everysec",
                        "--maxmemory-policy", "noeviction", "--dir", "/data"],
            "volumes": ["redis:/data"], "stop_grace_period": "60s",
        },
        "models": {"image": k8s.IMAGE, "command": ["python", "-c", COPY_MODELS],
                   "volumes": ["models:/models"]},
        "triton": {
            "image": k8s.TRITON_IMAGE, "restart": "unless-stopped",
            "command": ["tritonserver", "--model-repository=/models", "--model-config-name=gpu",
                        "--strict-readiness=true", "--exit-on-error=true"],
            "environment": {"PYTHONDONTWRITEBYTECODE": "1"},
            "volumes": ["models:/models:ro"], "shm_size": "2gb",
            "depends_on": {"models": {"condition": "service_completed_successfully"}},
            "deploy": {"resources": {"reservations": {"devices": [
                {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]}}},
            "healthcheck": {"test": ["CMD", "curl", "-sf", f"http://127.0.0.1:{k8s.TRITON_HTTP}/v2/health/ready"],
                            "interval": "5s", "retries": 60},
        },
        "exporter": {
            "image": k8s.IMAGE, "command": ["millstream", "exporter"], "restart": "unless-stopped",
            "environment": environment(namespace), "ports": [f"127.0.0.1:{k8s.PORT}:{k8s.PORT}"],
            "depends_on": {"redis": {"condition": "service_started"}},
        },
    }
    services.update({w.stage: worker(w, namespace) for w in k8s.WORKERS})
    return {"name": "millstream", "services": services,
            "volumes": {"redis": {}, "models": {}, "images": {}}}
