"""Untrusted text made safe to show an operator: in a terminal, a table cell or a log line.

Payloads, request ids and error texts come from outside. Shown as they are,
``\\x1b[2J`` clears the operator's screen, ``\\x1b]8;;...`` plants a link, a
carriage return overwrites a log line, a right-to-left override reverses what
follows, and ``[/]`` is markup to rich (a crash). ``plain`` replaces every
control character, C1 control, bidirectional override and zero-width format
character with a visible escape (``\\x1b``, ``\\u202e``); rich callers also pass
the result as ``rich.text.Text`` (never as markup).
"""

from __future__ import annotations

import re

# C0 and C1 controls (with DEL), bidi embeddings/overrides/isolates, zero-width and BOM, line and
# paragraph separators: everything that changes how the text around it is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    # C1 and later as \u escapes: inside JSON text those stay valid JSON (C0 never occurs raw there).
    return f"\\x{code:02x}" if code < 0x20 else f"\\u{code:04x}"


def plain(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` (str() of it) with every character that could steer a terminal escaped visibly."""
    pattern = _UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, str(text))
