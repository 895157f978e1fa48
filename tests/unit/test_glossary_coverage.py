"""Glossary coverage: the fewest-untranslated cut, its figures and metric, the demo's phrases."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from bench.coverage import DEFAULT_PHRASES, coverage, greedy, read_phrases
from processors.local.samples import PHRASES
from processors.translate.glossary import Glossary, Kind, is_han, load_glossary
from processors.translate.metrics import TranslateMetrics
from processors.translate.translator import GlossaryTranslator, current_task

SHIPPED = load_glossary()
TRIPLE = Glossary({"甲乙": "AB", "乙丙": "BC", "甲": "A"})


def test_the_cut_that_leaves_fewest_characters_beats_the_greedy_longest_word() -> None:
    assert greedy(TRIPLE, "甲乙丙").untranslated == ("丙",)
    result = TRIPLE.translate("甲乙丙")
    assert (result.text, result.untranslated, result.han_chars) == ("A BC", (), 3)


def test_among_cuts_that_translate_everything_the_fewest_words_win() -> None:
    words = Glossary({"品质": "품질", "生活": "생활", "品质生活": "품질 생활", "品": "x", "质": "y"})
    assert [(s.source, s.kind) for s in words.segment("品质生活")] == [("品质生活", Kind.WORD)]


def test_untranslated_characters_are_counted_in_runs_between_the_words() -> None:
    result = TRIPLE.translate("某甲某某")
    assert result.untranslated == ("某", "某某") and result.untranslated_chars == 3 and result.han_chars == 4


def test_a_long_unknown_text_is_cut_in_linear_time() -> None:
    result = SHIPPED.translate("某" * 50_000 + "包邮")
    assert result.untranslated_chars == 50_000 and result.text.endswith("무료배송")


def test_the_whole_phrase_baseline_translates_only_entries() -> None:
    assert SHIPPED.whole_phrase("包邮").untranslated == ()
    assert SHIPPED.whole_phrase("今日包邮").untranslated_chars == 4


def test_the_demo_images_phrases_come_out_with_no_chinese_left() -> None:
    for phrase in PHRASES:
        result = SHIPPED.translate(phrase)
        assert result.untranslated == () and not any(map(is_han, result.text)), (phrase, result.text)


def test_no_held_out_phrase_is_itself_a_glossary_entry() -> None:
    for path in DEFAULT_PHRASES:
        phrases = read_phrases(path)
        assert len(set(phrases)) == len(phrases), path
        assert not set(phrases) & set(SHIPPED.phrases), path
        assert all(any(map(is_han, p)) for p in phrases), path
    assert len(read_phrases(DEFAULT_PHRASES[0])) >= 200


def test_coverage_of_the_held_out_copy_beats_the_whole_phrase_baseline() -> None:
    phrases = read_phrases(DEFAULT_PHRASES[0])
    shipped, _ = coverage(SHIPPED, phrases, Glossary.translate)
    baseline, _ = coverage(SHIPPED, phrases, Glossary.whole_phrase)
    assert shipped >= 0.95 > baseline


def test_the_translator_counts_and_logs_the_share_left_untranslated(caplog) -> None:
    registry = CollectorRegistry()
    translator = GlossaryTranslator(TRIPLE, TranslateMetrics(registry, "glossary"))

    async def translate() -> list[str]:
        current_task.set("req-7")
        return await translator.translate(["甲乙丙", "某甲"])

    with caplog.at_level(logging.INFO, logger="millstream.translate"):
        assert asyncio.run(translate()) == ["A BC", "某 A"]
    value = registry.get_sample_value
    assert value("millstream_translate_source_chars_total") == 5
    assert value("millstream_translate_untranslated_chars_total") == 1
    assert value("millstream_translate_untranslated_share_count") == 1
    assert value("millstream_translate_untranslated_share_sum") == 0.2
    assert "[req-7]" in caplog.text and "1 left untranslated (20.0%)" in caplog.text


def test_the_demo_images_read_by_ocr_come_out_with_no_chinese_left() -> None:
    from processors.local import samples
    from processors.stages.ocr import OcrEngine

    engine, read = OcrEngine(), []
    for n, is_long in enumerate([False, False, True]):  # the images `millstream up --demo` submits
        read += [box[1][0] for box in engine.read_sync(samples.product_image(is_long, seed=n).image)]
    assert len(read) >= 18, read
    translator = GlossaryTranslator(SHIPPED, TranslateMetrics(CollectorRegistry(), "glossary"))
    for text, korean in zip(read, asyncio.run(translator.translate(read)), strict=True):
        assert not any(map(is_han, korean)), (text, korean)
