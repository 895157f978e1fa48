"""The embedded translator: a Chinese -> Korean glossary with longest-match segmentation.

A text is cut into the segments that leave the fewest Han characters
untranslated, and among those the fewest words (so the longest ones); a tie
goes to the longer word at the earlier position. It is a dynamic programme
over the positions of the text (decision 0038): greedy forward maximum
matching can take a long word that leaves its neighbour without one
(``AB|C`` where ``A|BC`` covers all three), and the programme never does.
The kinds of segment:

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
from itertools import groupby
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
    """The translation, the runs of Chinese left as they were, and the Han characters read."""

    text: str
    untranslated: tuple[str, ...]
    han_chars: int = 0

    @property
    def untranslated_chars(self) -> int:
        return sum(len(run) for run in self.untranslated)


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
        han = sum(is_han(char) for s in segments for char in s.source)
        return GlossaryResult(render(segments), raw, han)

    def whole_phrase(self, text: str) -> GlossaryResult:
        """Lookup of the whole ``text`` only: the baseline that bench/coverage.py compares against."""
        key = unicodedata.normalize("NFKC", text).strip()
        han = sum(map(is_han, key))
        if key in self.phrases:
            return GlossaryResult(self.phrases[key], (), han)
        runs = tuple("".join(run) for is_run, run in groupby(key, is_han) if is_run)
        return GlossaryResult(text, runs, han)

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
        return next(self.matches(text, i), None)

    def matches(self, text: str, i: int) -> Iterator[Segment]:
        """Every entry starting at ``text[i]``, longest first; a unit before a phrase of its length."""
        unit_allowed = _after_alnum(text, i)
        for length in range(min(self._longest, len(text) - i), 0, -1):
            key = text[i:i + length]
            if unit_allowed and key in self.units:
                yield Segment(key, self.units[key], Kind.UNIT)
            if key in self.phrases:
                yield Segment(key, self.phrases[key], Kind.WORD)

    def _scan(self, text: str) -> list[Segment]:
        # best[i]: (untranslated Han characters, words) of the best cut of text[i:], and its
        # first step; filled right to left, so each position looks only at later ones.
        best: list[tuple[tuple[int, int], Segment | None]] = [((0, 0), None)] * (len(text) + 1)
        for i in range(len(text) - 1, -1, -1):
            raw, words = best[i + 1][0]
            choice: tuple[tuple[int, int], Segment | None] = ((raw + is_han(text[i]), words), None)
            for found in self.matches(text, i):  # strictly better only: ties keep the longer word
                raw, words = best[i + len(found.source)][0]
                if (raw, words + 1) < choice[0]:
                    choice = ((raw, words + 1), found)
            best[i] = choice
        return _walk(text, best)


def _walk(text: str, best: list[tuple[tuple[int, int], Segment | None]]) -> list[Segment]:
    """The segments of the chosen cut; characters no word took join runs of their kind."""
    segments: list[Segment] = []
    i = start = 0
    while i < len(text):
        found = best[i][1]
        if found is None and (i == start or is_han(text[i]) == is_han(text[start])):
            i += 1
            continue
        if start < i:
            run = text[start:i]
            segments.append(Segment(run, run, Kind.RAW if is_han(run[0]) else Kind.TEXT))
        if found is not None:
            segments.append(found)
            i += len(found.source)
        start = i
    if start < len(text):
        run = text[start:]
        segments.append(Segment(run, run, Kind.RAW if is_han(run[0]) else Kind.TEXT))
    return segments


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
