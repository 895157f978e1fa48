"""Names of streams, stages, pipelines and namespaces: one rule for every transport.

Names travel inside keys, status records and events without escaping, so they
are restricted to letters, digits, ``_``, ``.`` and ``-``.
"""

from __future__ import annotations

import re

from streams.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # whole names only (fullmatch): "$" would let a final newline in


def checked(kind: str, value: str) -> str:
    """``value`` if it is a valid name of a ``kind`` (a stream, a stage...), else ConfigError."""
    if not _NAME.fullmatch(value):
        raise ConfigError(kind, f"{value!r} must be letters, digits, '_', '.' or '-'")
    return value
