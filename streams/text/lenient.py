"""Reading a task's ids from JSON text that a strict parser refuses.

``read_ids(text, names)`` scans the top level of a JSON object given as text and
returns the values named ``names`` (a pipeline's id fields) as text, tolerating what orjson
refuses: NaN, Infinity, hex or huge numbers, raw control characters, bad
escapes, nesting beyond any depth limit, a cut-off end, and strings in single
quotes (Python's ``str(dict)``, which producers send for JSON when
``json.dumps`` fails on a value, e.g. an integer beyond 64 bits). A string value reads
as its characters; any other scalar as its literal exactly as written
(``12345678901234567890`` stays exact, ``0x1F`` stays ``0x1F``). null, an
object, an array, or a name the scan never reaches read as None. A name given
twice reads as its last value, as orjson reads it.

The scan is iterative and linear in the text's length (regular expressions do
the per-character work), and it never raises on any ``str``. Every text it
returns is valid UTF-8 (lone surrogates are replaced), so it can be encoded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_ID_CHARS = 1024  # an id longer than this is not an id: it is cut, so records stay small
MAX_STEPS = 100_000  # brackets and strings skipped per scan: bounds a hostile text's cost (~50 ms)

_WS = re.compile(r"[ \t\n\r]*")
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.S)  # up to the closing quote
_QUOTED_BODY = re.compile(r"[^'\\]*(?:\\.[^'\\]*)*", re.S)  # the same, in single quotes
_BODIES = {'"': _STRING_BODY, "'": _QUOTED_BODY}
_SCALAR = re.compile(r"[^,:{}\[\]\"\s]*")
_STRUCTURE = re.compile(r'["\'{}\[\]]')
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def read_ids(text: str, names: Sequence[str]) -> dict[str, str | None]:
    """``names`` of the top-level object in ``text``, each as text or None (see the module doc)."""
    found: dict[str, str | None] = dict.fromkeys(names)
    longest, end, budget = max(map(len, names), default=0), len(text), [MAX_STEPS]
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("{", pos):
        return found
    pos += 1
    while True:
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= end or text[pos] == "}":
            break
        if text[pos] == ",":
            pos += 1
            continue
        if text[pos] not in _BODIES:
            break  # not a key: nothing further can be read with confidence
        body, pos = _string_body(text, pos)
        key = _unescape(body) if len(body) <= 6 * longest else ""  # longer: none of ``names``
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if not text.startswith(":", pos):
            break
        value, pos = _value(text, _WS.match(text, pos + 1).end(), key in found, budget)  # type: ignore[union-attr]
        if key in found:
            found[key] = None if value is None else safe_text(value)[:MAX_ID_CHARS]
        if budget[0] <= 0:
            break
    return found


def safe_text(text: str) -> str:
    """``text`` with lone surrogates replaced, so that it encodes as UTF-8."""
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _string_body(text: str, pos: int) -> tuple[str, int]:
    """The raw text of the string starting at quote ``pos`` (double or single), and the position after it."""
    body = _BODIES[text[pos]].match(text, pos + 1)
    assert body is not None  # the pattern matches the empty string
    return body.group(), min(len(text), body.end() + 1)


def _unescape(body: str) -> str:
    return _ESCAPE.sub(_escaped, body) if "\\" in body else body


def _escaped(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) == 5:
        return chr(int(code[1:], 16))  # a surrogate half: safe_text pairs or replaces it
    return _SIMPLE.get(code, code)


def _value(text: str, pos: int, wanted: bool, budget: list[int]) -> tuple[str | None, int]:
    """The value at ``pos`` as text (None for null and containers), and the position after it.

    Only a ``wanted`` string is unescaped: that costs a call per escape.
    """
    if text.startswith(('"', "'"), pos):
        body, after = _string_body(text, pos)
        return (_unescape(body) if wanted else body), after
    if text.startswith(("{", "["), pos):
        return None, _skip_container(text, pos, budget)
    token = _SCALAR.match(text, pos)
    assert token is not None
    literal = token.group()
    return (None if literal in ("", "null") else literal), token.end()


def _skip_container(text: str, pos: int, budget: list[int]) -> int:
    """The position after the object or array opening at ``pos`` (the end if it never closes,
    or once ``budget`` steps are spent)."""
    depth = 0
    while (found := _STRUCTURE.search(text, pos)) is not None:
        budget[0] -= 1
        if budget[0] <= 0:
            return len(text)
        char, pos = found.group(), found.end()
        if char in _BODIES:
            pos = _BODIES[char].match(text, pos).end() + 1  # type: ignore[union-attr]
        elif char in "{[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos
    return len(text)
