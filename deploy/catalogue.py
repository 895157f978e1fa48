"""Which series exist: the metrics millstream exposes, and the names a PromQL expression reads.

Used by the tests to check that rules and dashboard panels name only series
that exist (a typo in a rule is an alert that never fires).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prometheus_client import CollectorRegistry

# Series Prometheus itself writes.
BUILTIN = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_CLAUSE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*\w+\)$", re.S)


def names_in(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and label names left out).

    Understands Grafana's ``label_values(<selector>, <label>)`` as its selector.
    """
    grafana = _LABEL_VALUES.match(expr.strip())
    text = grafana.group(1) if grafana else expr
    for pattern in (_STRING, _MATCHERS, _RANGE, _CLAUSE):
        text = pattern.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        is_call = text[match.end():].lstrip().startswith("(")
        if not is_call and match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


def exposed(register: Callable[[CollectorRegistry], object]) -> set[str]:
    """Sample names of the collectors that ``register`` puts on a fresh registry."""
    registry = CollectorRegistry()
    register(registry)
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum")}
        else:
            names.add(family.name)
    return names


def stream_metrics() -> set[str]:
    """Every metric of ``streams.metrics.Metrics`` (workers and the exporter)."""
    from streams.metrics import Metrics

    return exposed(Metrics)


def inference_metrics() -> set[str]:
    """Every metric of the inference client (processors/inference/metrics.py)."""
    from processors.inference.metrics import InferenceMetrics

    return exposed(InferenceMetrics)
