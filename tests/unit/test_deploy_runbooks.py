"""docs/OPERATIONS.md has a runbook for every alert and documents every metric and recorded series."""

from __future__ import annotations

import re

import pytest

from deploy.catalogue import inference_metrics, stream_metrics
from deploy.prometheus import alerts
from deploy.render import OPERATIONS
from deploy.thresholds import load


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def base_names(names: set[str]) -> set[str]:
    """Metric names as documented: histograms once, without _bucket/_count/_sum."""
    return {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}


def test_every_runbook_url_points_to_a_section_of_operations_md():
    text = OPERATIONS.read_text()
    rules = alerts.rule_file(load())["groups"][0]["rules"]
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path.endswith("docs/OPERATIONS.md"), url
        assert anchor in anchors(text), f"{rule['alert']}: no section #{anchor} in {OPERATIONS}"


def test_every_runbook_says_what_the_alert_means_and_what_to_do():
    sections = re.split(r"^### ", OPERATIONS.read_text(), flags=re.M)
    runbooks = {s.split("\n", 1)[0].strip(): s for s in sections}
    for name in load().alerts:
        assert "**Means**" in runbooks[name] and "**Do**" in runbooks[name], name


def test_operations_md_keeps_a_dead_letters_section_for_the_replay_guide():
    assert "dead-letters" in anchors(OPERATIONS.read_text())


def test_every_millstream_metric_is_documented():
    text = OPERATIONS.read_text()
    for name in sorted(base_names(stream_metrics())):
        assert f"`{name}`" in text, f"{name} is not described in {OPERATIONS}"


def test_every_inference_metric_is_documented():
    pytest.importorskip("processors.inference.metrics")
    text = OPERATIONS.read_text()
    for name in sorted(base_names(inference_metrics())):
        assert f"`{name}`" in text, f"{name} is not described in {OPERATIONS}"
