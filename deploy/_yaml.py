"""A small YAML writer for the files ``deploy/render.py`` generates (no PyYAML needed).

It writes mappings, lists, strings, numbers and booleans. Multi-line strings
(PromQL expressions) become literal blocks; a string that YAML could read as
something else (a number, ``true``, ``null``, text with ``: ``) is quoted:
single quotes when it has none, else as a JSON string (valid YAML).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLAIN = re.compile(r"^([A-Za-z_][A-Za-z0-9_./-]*|\d+(ms|s|m|h|d|w))$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if value is None:
        return "null"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    if "'" not in text and text.isprintable():
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def _block(text: str, indent: int) -> str:
    if text[:1].isspace():
        raise ValueError(f"a multi-line string must not start with blank space: {text[:20]!r}")
    pad = " " * indent
    chomp = "" if text.endswith("\n") else "-"
    lines = [f"{pad}{line}".rstrip() for line in text.rstrip("\n").split("\n")]
    return f"|{chomp}\n" + "\n".join(lines)


def _value(value: Any, indent: int) -> str:
    """The text after ``key:`` or ``- `` for ``value``, nested blocks starting on a new line."""
    if isinstance(value, Mapping):
        return "{}" if not value else "\n" + _mapping(value, indent)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[]" if not value else "\n" + _sequence(value, indent)
    if isinstance(value, str) and "\n" in value:
        return _block(value, indent)
    return scalar(value)


def _mapping(mapping: Mapping[str, Any], indent: int) -> str:
    pad = " " * indent
    lines = []
    for key, value in mapping.items():
        text = _value(value, indent + 2)
        lines.append(f"{pad}{scalar(key)}:{text if text.startswith(chr(10)) else ' ' + text}")
    return "\n".join(lines)


def _sequence(items: Sequence[Any], indent: int) -> str:
    pad = " " * indent
    lines = []
    for item in items:
        if isinstance(item, Mapping) and item:
            nested = _mapping(item, indent + 2)
            lines.append(f"{pad}- {nested[indent + 2:]}")
        else:
            text = _value(item, indent + 2)
            lines.append(f"{pad}-{text if text.startswith(chr(10)) else ' ' + text}")
    return "\n".join(lines)


def dump(document: Mapping[str, Any]) -> str:
    """One YAML document for ``document``, ending with a newline."""
    return _mapping(document, 0) + "\n"


def dump_all(documents: Sequence[Mapping[str, Any]]) -> str:
    """Several YAML documents separated by ``---``."""
    return "---\n".join(dump(d) for d in documents)
