"""Thresholds: ``deploy/thresholds.toml`` read in one place, durations in seconds.

A value written as a Prometheus duration ("5m") is a duration; a bare number is
a quantity. ``scaled(factor)`` multiplies every duration, windows kept at least
``min_window`` long (a rate needs a few scrapes): the end-to-end test runs the
production rules in seconds that way.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("thresholds.toml")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
SEVERITIES = ("critical", "warning", "info")


def seconds(text: str) -> float:
    """Seconds of a single-unit Prometheus duration such as ``"90s"`` or ``"5m"``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 5m or 2h")
    return int(match.group(1)) * _UNITS[match.group(2)]


def duration(value: float) -> str:
    """A Prometheus duration for ``value`` seconds, in the largest unit that divides it."""
    millis = round(value * 1000)
    for unit in ("w", "d", "h", "m", "s", "ms"):
        size = round(_UNITS[unit] * 1000)
        if millis % size == 0 and millis:
            return f"{millis // size}{unit}"
    return "0s"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert's settings: ``durations`` in seconds, ``numbers`` as written."""

    name: str
    severity: str
    durations: Mapping[str, float]
    numbers: Mapping[str, float]
    stages: Mapping[str, float] = field(default_factory=dict)

    @property
    def for_(self) -> str:
        return duration(self.durations.get("for", 0))

    @property
    def window(self) -> str:
        return duration(self.durations["window"])

    def threshold(self) -> float:
        """The threshold, in seconds when written as a duration."""
        return self.durations.get("threshold", self.numbers.get("threshold", 0.0))


@dataclass(frozen=True, slots=True)
class Thresholds:
    runbook_base_url: str
    exporter_job: str
    alerts: Mapping[str, Alert]
    scaling: Mapping[str, Any]

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbook_base_url}#{alert.lower()}"

    def scaled(self, factor: float, min_window: float = 5.0) -> Thresholds:
        """The same thresholds with every duration multiplied by ``factor``."""

        def scale(alert: Alert) -> Alert:
            durations = {k: v * factor for k, v in alert.durations.items()}
            if "window" in durations:
                durations["window"] = max(min_window, durations["window"])
            stages = {k: v * factor for k, v in alert.stages.items()}
            return replace(alert, durations=durations, stages=stages)

        return replace(self, alerts={name: scale(a) for name, a in self.alerts.items()})


def _alert(name: str, table: Mapping[str, Any]) -> Alert:
    if table.get("severity") not in SEVERITIES:
        raise ValueError(f"{name}: severity must be one of {SEVERITIES}")
    durations = {k: seconds(v) for k, v in table.items() if isinstance(v, str) and k != "severity"}
    numbers = {k: float(v) for k, v in table.items() if isinstance(v, int | float)}
    stages = {k: seconds(v) if isinstance(v, str) else float(v)
              for k, v in table.get("stages", {}).items()}
    for key in stages:
        if key.count("/") != 1:
            raise ValueError(f"{name}: stage {key!r} must be written pipeline/stage")
    return Alert(name, table["severity"], durations, numbers, stages)


def load(path: Path = SOURCE) -> Thresholds:
    """Read and check ``path``; a malformed value raises ValueError naming the alert."""
    with path.open("rb") as f:
        raw = tomllib.load(f)
    alerts = {name: _alert(name, table) for name, table in raw["alerts"].items()}
    return Thresholds(raw["runbook_base_url"], raw["exporter_job"], alerts, raw["scaling"])
