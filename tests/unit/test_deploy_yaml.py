"""The small YAML writer quotes what YAML would misread and writes expressions as literal blocks."""

from __future__ import annotations

import pytest

from deploy import _yaml


@pytest.mark.parametrize(("value", "written"), [
    ("5m", "5m"), ("severity", "severity"), ("true", "'true'"), ("on", "'on'"), ("10", "'10'"),
    ("ms:{imgtr}:stream:tasks", "'ms:{imgtr}:stream:tasks'"), ("stage's", '"stage\'s"'),
    (10, "10"), (0.05, "0.05"), (True, "true"),
])
def test_scalars_that_yaml_would_misread_are_quoted(value: object, written: str):
    assert _yaml.scalar(value) == written


def test_multi_line_strings_become_literal_blocks_under_their_key():
    text = _yaml.dump({"rules": [{"record": "r", "expr": "a\n/\nb"}]})
    assert text == "rules:\n  - record: r\n    expr: |-\n      a\n      /\n      b\n"


def test_empty_collections_are_written_inline():
    assert _yaml.dump({"a": [], "b": {}}) == "a: []\nb: {}\n"
