"""The glossary translator: longest-match segmentation, spacing, and the shipped glossary."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.translate.glossary import Glossary, Kind, is_han, load_glossary, parse_glossary

SMALL = Glossary(
    phrases={"新品": "신상품", "新品上市": "신상품 출시", "上市": "출시", "包邮": "무료배송", "包": "가방",
             "T恤": "티셔츠", "黑色": "블랙", "白色": "화이트"},
    units={"件": "개", "个": "개", "个月": "개월", "米": "m", "包": "팩"},
)
SHIPPED = load_glossary()
COMMA, FULL_STOP, COLON = "\uff0c", "\u3002", "\uff1a"  # full-width comma, ideographic full stop, colon


def kinds(text: str, glossary: Glossary = SMALL) -> list[tuple[str, Kind]]:
    return [(s.source, s.kind) for s in glossary.segment(text)]


def test_the_longest_entry_wins_over_a_shorter_prefix() -> None:
    assert kinds("新品上市") == [("新品上市", Kind.WORD)]
    assert SMALL.translate("新品上市").text == "신상품 출시"


def test_matching_goes_left_to_right_taking_the_longest_entry_at_each_position() -> None:
    assert kinds("新品包邮上市") == [("新品", Kind.WORD), ("包邮", Kind.WORD), ("上市", Kind.WORD)]
    assert SMALL.translate("新品包邮上市").text == "신상품 무료배송 출시"


def test_untranslated_chinese_stays_as_it_is_and_is_reported_per_run() -> None:
    result = SMALL.translate("某某新品某")
    assert result.text == "某某 신상품 某"
    assert result.untranslated == ("某某", "某")


def test_an_untranslated_run_ends_where_an_entry_starts() -> None:
    assert kinds("某品牌新品") == [("某品牌", Kind.RAW), ("新品", Kind.WORD)]


def test_digits_latin_and_symbols_pass_through() -> None:
    result = SMALL.translate("ABC-123 新品 v2.0 #1")
    assert result.text == "ABC-123 신상품 v2.0 #1"
    assert result.untranslated == ()


def test_a_unit_joins_the_number_before_it() -> None:
    assert SMALL.translate("5件").text == "5개"
    assert SMALL.translate("1.5米").text == "1.5m"
    assert SMALL.translate("30cm").text == "30cm"


def test_the_longest_unit_wins_after_a_number() -> None:
    assert SMALL.translate("3个月").text == "3개월"
    assert SMALL.translate("3个").text == "3개"


def test_a_unit_counts_only_after_a_digit_or_a_latin_letter() -> None:
    assert SMALL.translate("2包").text == "2팩"
    assert SMALL.translate("包").text == "가방"
    assert SMALL.translate("件").untranslated == ("件",)


def test_a_longer_phrase_beats_a_unit_after_a_number() -> None:
    assert kinds("2包邮") == [("2", Kind.TEXT), ("包邮", Kind.WORD)]


def test_a_number_before_a_word_is_set_apart_by_a_space() -> None:
    assert SMALL.translate("2023新品").text == "2023 신상품"


def test_full_width_digits_and_letters_are_read_as_ascii() -> None:
    assert SMALL.translate("\uff12\uff10\uff12\uff13新品").text == "2023 신상품"
    assert kinds("\uff34恤") == [("T恤", Kind.WORD)]


def test_entries_that_start_with_a_latin_letter_are_found_inside_latin_text() -> None:
    assert SMALL.translate("新品T恤").text == "신상품 티셔츠"


def test_chinese_sentence_punctuation_becomes_korean_punctuation_with_a_space() -> None:
    assert SMALL.translate(f"新品{COMMA}包邮{FULL_STOP}").text == "신상품, 무료배송."
    assert SMALL.translate(f"新品{COLON}5件").text == "신상품: 5개"


def test_brackets_and_joiners_take_no_space() -> None:
    assert SMALL.translate("\u3010新品\u3011").text == "[신상품]"
    assert SMALL.translate("(新品)").text == "(신상품)"
    assert SMALL.translate("黑色/白色").text == "블랙/화이트"


def test_existing_whitespace_is_kept_and_not_doubled() -> None:
    assert SMALL.translate("新品  包邮\n上市").text == "신상품  무료배송\n출시"


def test_the_empty_string_has_no_segments() -> None:
    assert SMALL.segment("") == []
    assert SMALL.translate("").text == ""


def test_hangul_and_kana_pass_through() -> None:
    assert SMALL.translate("한국어 カナ").text == "한국어 カナ"


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_text_without_chinese_comes_back_unchanged(text: str) -> None:
    assert SHIPPED.translate(text).text == text


@given(st.text(alphabet=st.sampled_from("新品包邮上市某件个月米黑色白T恤 5.,/"), max_size=30))
def test_only_reported_runs_of_chinese_are_left_in_the_output(text: str) -> None:
    result = SMALL.translate(text)
    left = {char for char in result.text if is_han(char)}
    assert left <= {char for run in result.untranslated for char in run}
    assert all(run in text for run in result.untranslated)


@pytest.mark.parametrize(
    ("chinese", "korean"),
    [
        ("包邮", "무료배송"),
        ("新品", "신상품"),
        ("限时折扣", "기간 한정 할인"),
        ("正品保证", "정품 보장"),
        ("材质", "소재"),
        ("尺寸", "사이즈"),
        ("纯棉T恤", "순면 티셔츠"),
        (f"颜色分类{COLON}黑色/白色", "색상 분류: 블랙/화이트"),
        ("100%纯棉", "100% 순면"),
        ("XL码", "XL사이즈"),
        ("\u3010新品上市\u3011", "[신상품 출시]"),
        (f"限时折扣{COMMA}正品保证", "기간 한정 할인, 정품 보장"),
    ],
)
def test_the_shipped_glossary_translates_common_product_page_phrases(chinese: str, korean: str) -> None:
    result = SHIPPED.translate(chinese)
    assert (result.text, result.untranslated) == (korean, ())


def test_the_shipped_glossary_has_a_few_hundred_entries_each_with_chinese_in_and_none_out() -> None:
    assert len(SHIPPED) >= 300
    for key, value in [*SHIPPED.phrases.items(), *SHIPPED.units.items()]:
        assert any(is_han(char) for char in key), key
        assert not any(is_han(char) for char in value), (key, value)


def test_the_shipped_json_has_no_key_twice_in_one_object() -> None:
    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
        return dict(pairs)

    text = files("processors").joinpath("data", "glossary_zh_ko.json").read_text(encoding="utf-8")
    data = json.loads(text, object_pairs_hook=refuse_duplicates)
    assert (data["source"], data["target"]) == ("zh", "ko")


def test_a_phrase_listed_in_two_categories_is_refused() -> None:
    with pytest.raises(ValueError, match="'包邮' appears twice"):
        parse_glossary({"phrases": {"a": {"包邮": "무료배송"}, "b": {"包邮": "무료 배송"}}})


def test_an_entry_without_a_translation_is_refused() -> None:
    with pytest.raises(ValueError, match="must map text to text"):
        parse_glossary({"phrases": {"shipping": {"包邮": ""}}})
