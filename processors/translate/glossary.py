"""The embedded translator: a Chinese -> Korean glossary with longest-match segmentation.

A text is cut into segments, left to right, taking at each position the
longest glossary entry that starts there (forward maximum matching):

=========  ==================================================  =======================
kind       what                                                example (source -> out)
=========  ==================================================  =======================
word       a glossary phrase                                   包邮 -> 무료배송
unit       a measure or counter right after a digit or letter  5件 -> 5 개 (joined: 5개)
raw        a run of Han characters no entry covers: kept as    某某 -> 某某
           it is and counted as untranslated
punct      Chinese sentence punctuation, in its Korean form    U+FF0C -> ,
text       anything else (digits, Latin, symbols, spaces):     30cm -> 30cm
           passed through (NFKC: full-width forms to ASCII)
=========  ==================================================  =======================

Korean separates words with spaces where Chinese does not, so ``render``
puts a space between neighbouring words and after sentence punctuation, and
none between a number and its unit. The glossary lives in
``processors/data/glossary_zh_ko.json``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib.resources import files
from typing import Any

SOURCE_LANG, TARGET_LANG = "zh", "ko"
# Sentence punctuation of Chinese (full-width comma, ideographic full stop, full-width
# ! ? : ;, enumeration comma) and the form Korean writes it in, with a space after.
SENTENCE_PUNCT = {"\uff0c": ",", "\u3002": ".", "\uff01": "!", "\uff1f": "?", "\uff1a": ":",
                  "\uff1b": ";", "\u3001": ","}
_PUNCT_SPLIT = re.compile(f"([{''.join(SENTENCE_PUNCT)}])")
# Brackets and quotes that NFKC leaves in their CJK form: lenticular and tortoise-shell
# brackets, curly quotes.
_BRACKETS = str.maketrans({"\u3010": "[", "\u3011": "]", "\u3014": "(", "\u3015": ")",
                           "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
# After these, a following word is not set apart by a space ("(신상품)", "블랙/화이트").
_JOINERS = "([{<\"'-/~+&*#@_=·"


class Kind(Enum):
    WORD = "word"
    UNIT = "unit"
    RAW = "raw"
    PUNCT = "punct"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Segment:
    source: str
    text: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class GlossaryResult:
    text: str
    untranslated: tuple[str, ...]


def is_han(char: str) -> bool:
    """A Han ideograph (CJK unified, extensions, compatibility) or the ideographic zero."""
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x3134F or code == 0x3007)


def _after_alnum(text: str, i: int) -> bool:
    return i > 0 and text[i - 1].isascii() and text[i - 1].isalnum()


class Glossary:
    """Phrases (anywhere) and units (only after a digit or a Latin letter), NFKC keys."""

    def __init__(self, phrases: Mapping[str, str], units: Mapping[str, str] | None = None) -> None:
        self.phrases = {unicodedata.normalize("NFKC", k): v for k, v in phrases.items()}
        self.units = {unicodedata.normalize("NFKC", k): v for k, v in (units or {}).items()}
        self._longest = max(map(len, [*self.phrases, *self.units, ""]))

    def __len__(self) -> int:
        return len(self.phrases) + len(self.units)

    def translate(self, text: str) -> GlossaryResult:
        segments = self.segment(text)
        raw = tuple(s.source for s in segments if s.kind is Kind.RAW)
        return GlossaryResult(render(segments), raw)

    def segment(self, text: str) -> list[Segment]:
        segments: list[Segment] = []
        for part in _PUNCT_SPLIT.split(text):
            if part in SENTENCE_PUNCT:
                segments.append(Segment(part, SENTENCE_PUNCT[part], Kind.PUNCT))
            elif part:
                segments.extend(self._scan(unicodedata.normalize("NFKC", part).translate(_BRACKETS)))
        return segments

    def match(self, text: str, i: int) -> Segment | None:
        """The longest entry starting at ``text[i]``; a unit wins a tie after a number."""
        unit_allowed = _after_alnum(text, i)
        for length in range(min(self._longest, len(text) - i), 0, -1):
            key = text[i:i + length]
            if unit_allowed and key in self.units:
                return Segment(key, self.units[key], Kind.UNIT)
            if key in self.phrases:
                return Segment(key, self.phrases[key], Kind.WORD)
        return None

    def _scan(self, text: str) -> Iterator[Segment]:
        i = 0
        while i < len(text):
            found = self.match(text, i)
            if found is not None:
                yield found
                i += len(found.source)
                continue
            han = is_han(text[i])
            end = i + 1
            while end < len(text) and is_han(text[end]) == han and self.match(text, end) is None:
                end += 1
            yield Segment(text[i:end], text[i:end], Kind.RAW if han else Kind.TEXT)
            i = end


def _spaced(left: Segment, right: Segment) -> bool:
    """Whether Korean wants a space between two neighbouring segments."""
    if not left.text or not right.text or left.text[-1].isspace() or right.text[0].isspace():
        return False
    if right.kind in (Kind.UNIT, Kind.PUNCT):
        return False
    if left.kind is Kind.PUNCT:
        return right.text[0] not in ")]}>\"'"
    translated = left.kind in (Kind.WORD, Kind.UNIT) or right.kind is Kind.WORD
    if left.kind is Kind.TEXT:
        return right.kind is Kind.WORD and left.text[-1] not in _JOINERS
    if right.kind is Kind.TEXT:
        return translated and right.text[0].isalnum()
    return translated


def render(segments: list[Segment]) -> str:
    parts: list[str] = []
    for before, segment in zip([None, *segments], segments, strict=False):
        if before is not None and _spaced(before, segment):
            parts.append(" ")
        parts.append(segment.text)
    return "".join(parts)


def parse_glossary(data: Mapping[str, Any]) -> Glossary:
    """Build a Glossary from the JSON layout of glossary_zh_ko.json; ValueError if malformed."""
    units = _entries("units", data.get("units", {}))
    phrases: dict[str, str] = {}
    for category, entries in dict(data.get("phrases", {})).items():
        for key, value in _entries(f"phrases.{category}", entries).items():
            if key in phrases:
                raise ValueError(f"glossary: {key!r} appears twice (again in phrases.{category})")
            phrases[key] = value
    if not phrases:
        raise ValueError("glossary: no phrases")
    return Glossary(phrases, units)


def _entries(where: str, entries: Any) -> dict[str, str]:
    if not isinstance(entries, Mapping):
        raise ValueError(f"glossary: {where} must be an object of source -> target")
    for key, value in entries.items():
        if not key or not isinstance(value, str) or not value.strip():
            raise ValueError(f"glossary: {where}: entry {key!r} -> {value!r} must map text to text")
    return dict(entries)


def load_glossary(name: str = "glossary_zh_ko.json") -> Glossary:
    """The glossary shipped in ``processors/data`` (package data)."""
    text = files("processors").joinpath("data", name).read_text(encoding="utf-8")
    return parse_glossary(json.loads(text))
