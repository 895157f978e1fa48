"""KEDA ScaledObjects: one per stage, scaling the stage's Deployment on its group's lag.

The ``redis-streams`` trigger in lag mode (``lagCount``, Redis >= 7) reads the
group's ``lag`` from XINFO GROUPS: entries not yet delivered. That is the
backlog a new replica can take; pending entries are already held by a
consumer. ``minReplicaCount`` stays >= 1, so every stage always has a live
consumer (heartbeat, recovery of dead consumers' entries, its metrics);
``activationLagCount`` only matters when scaling from zero. Deployments are
named ``millstream-<pipeline>-<stage>`` and live in the Kubernetes namespace
``NAMESPACE``, as deploy/kubernetes/ declares them (a ScaledObject scales a
Deployment of its own namespace only). KEDA reads Redis as its own ACL user,
with only XINFO GROUPS (docs/operations/redis-acl.md): the Secret ``AUTH``
holds its ``username`` and ``password`` beside the workers' ``url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.redis.keys import Keys

AUTH = "millstream-redis"
NAMESPACE = "millstream"


def deployment(pipeline: str, stage: str) -> str:
    return f"millstream-{pipeline}-{stage}"


def trigger_authentication() -> dict[str, Any]:
    """KEDA's Redis user and password, from the Secret that also holds the workers' MILLSTREAM_REDIS_URL."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": AUTH, "namespace": NAMESPACE},
        "spec": {"secretTargetRef": [{"parameter": key, "name": AUTH, "key": key}
                                     for key in ("username", "password")]},
    }


def scaled_object(scaling: Mapping[str, Any], pipeline: str, stage: str,
                  target: Mapping[str, Any]) -> dict[str, Any]:
    if int(target["min_replicas"]) < 1:
        raise ValueError(f"{pipeline}/{stage}: min_replicas must be >= 1")
    keys = Keys(scaling["namespace"], pipeline)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": deployment(pipeline, stage), "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/part-of": "millstream",
                                "millstream/pipeline": pipeline, "millstream/stage": stage}},
        "spec": {
            "scaleTargetRef": {"name": deployment(pipeline, stage)},
            "pollingInterval": int(scaling["polling_interval"]),
            "cooldownPeriod": int(scaling["cooldown_period"]),
            "minReplicaCount": int(target["min_replicas"]),
            "maxReplicaCount": int(target["max_replicas"]),
            "triggers": [{
                "type": "redis-streams",
                "metadata": {
                    "address": scaling["redis_address"],
                    "stream": keys.stream(target["source"]),
                    "consumerGroup": stage,
                    "lagCount": str(target["lag_per_replica"]),
                    "activationLagCount": "0",
                },
                "authenticationRef": {"name": AUTH},
            }],
        },
    }


def manifests(scaling: Mapping[str, Any], pipeline: str) -> list[dict[str, Any]]:
    """The TriggerAuthentication and the ScaledObject of every stage of ``pipeline``."""
    stages = scaling[pipeline]
    return [trigger_authentication(),
            *(scaled_object(scaling, pipeline, stage, target) for stage, target in stages.items())]


def pipelines(scaling: Mapping[str, Any]) -> list[str]:
    return [name for name, value in scaling.items() if isinstance(value, dict)]
