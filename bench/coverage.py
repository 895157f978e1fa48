"""Glossary coverage: the share of Han characters translated on held-out product copy.

    .venv/bin/python -m bench.coverage [--phrases FILE ...] [--glossary FILE]

The phrases default to both held-out lists of tests/data: heldout_phrases_zh.txt (whose
misses showed which words the glossary lacked) and heldout_phrases_zh_blind.txt (written
after the words were frozen, never used to add any: the fair figure).

Three ways of using the same glossary, measured in the same run:

- whole phrase (the baseline): a phrase is translated only when it is an entry itself;
- greedy: left to right, the longest entry at each position (what the glossary did before);
- shipped: ``Glossary.translate``, the cut that leaves the fewest characters (decision 0038).

It prints each figure, the ratio against the baseline, the phrases that still keep
Chinese, and the same figures for the demo's own phrases (processors/local/samples.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from processors.local.samples import PHRASES
from processors.translate.glossary import (
    Glossary,
    GlossaryResult,
    Kind,
    is_han,
    load_glossary,
    parse_glossary,
)

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
DEFAULT_PHRASES = (DATA / "heldout_phrases_zh.txt", DATA / "heldout_phrases_zh_blind.txt")
Method = Callable[[Glossary, str], GlossaryResult]


def read_phrases(path: Path) -> list[str]:
    """The phrases of ``path``: one a line, blank lines and '#' comments skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def greedy(glossary: Glossary, text: str) -> GlossaryResult:
    """Forward maximum matching: the longest entry at each position, else one character left."""
    runs: list[str] = []
    han = sum(map(is_han, text))
    i, run = 0, ""
    while i < len(text):
        found = glossary.match(text, i)
        if found is not None and found.kind in (Kind.WORD, Kind.UNIT):
            runs, run, i = [*runs, run] if run else runs, "", i + len(found.source)
            continue
        run = run + text[i] if is_han(text[i]) else run
        i += 1
    return GlossaryResult(text, tuple([*runs, run] if run else runs), han)


METHODS: dict[str, Method] = {
    "whole phrase": Glossary.whole_phrase,
    "greedy": greedy,
    "shipped": Glossary.translate,
}


def coverage(glossary: Glossary, phrases: Sequence[str], method: Method) -> tuple[float, list[str]]:
    """The share of Han characters translated, and the phrases that keep some Chinese."""
    results = [method(glossary, phrase) for phrase in phrases]
    han = sum(r.han_chars for r in results)
    left = sum(r.untranslated_chars for r in results)
    missed = [p for p, r in zip(phrases, results, strict=True) if r.untranslated]
    return (1 - left / han if han else 1.0), missed


def report(title: str, glossary: Glossary, phrases: Sequence[str]) -> dict[str, float]:
    han = sum(is_han(c) for p in phrases for c in p)
    print(f"{title}: {len(phrases)} phrases, {han} Han characters")
    figures: dict[str, float] = {}
    for name, method in METHODS.items():
        share, missed = coverage(glossary, phrases, method)
        figures[name] = share
        base = figures["whole phrase"]
        ratio = f"x{share / base:.2f} the baseline" if base else f"{100 * (share - base):+.2f} points"
        print(f"  {name:<13} {100 * share:6.2f}% of characters translated  "
              f"({len(missed)} phrases keep Chinese; {ratio})")
    _, missed = coverage(glossary, phrases, Glossary.translate)
    for phrase in missed:
        print(f"    left: {phrase} -> {glossary.translate(phrase).text}")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phrases", type=Path, action="append",
                        help="a file of phrases, one a line (repeatable; default: both held-out lists)")
    parser.add_argument("--glossary", type=Path, help="a glossary JSON file instead of the shipped one")
    args = parser.parse_args(argv)
    glossary = (parse_glossary(json.loads(args.glossary.read_text(encoding="utf-8")))
                if args.glossary else load_glossary())
    print(f"glossary: {len(glossary)} entries")
    for path in args.phrases or DEFAULT_PHRASES:
        report(f"held-out ({path.name})", glossary, read_phrases(path))
    report("demo phrases (processors/local/samples.py)", glossary, PHRASES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
