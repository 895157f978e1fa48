"""Provider replies are checked before use; blank texts and empty batches cost no request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from processors.translate.http import MalformedReply, translate_batch
from processors.translate.libre import endpoint
from processors.translate.libre import parse_reply as parse_libre
from processors.translate.metrics import TranslateMetrics
from processors.translate.openai import parse_content
from processors.translate.openai import parse_reply as parse_chat
from processors.translate.translator import TranslateSettings, build_translator


def chat(content: Any, finish_reason: str = "stop") -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}]}


def test_a_libretranslate_reply_gives_its_translations_in_order() -> None:
    assert parse_libre({"translatedText": ["가", "나"]}, 2) == ["가", "나"]


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ({"error": "oops"}, "no 'translatedText'"),
        ([], "no 'translatedText'"),
        ({"translatedText": "가"}, "expected a JSON array of 2 strings, got str"),
        ({"translatedText": ["가"]}, "1 translations for 2 texts"),
        ({"translatedText": ["가", 3]}, "translation 1 is int, not a string"),
    ],
)
def test_a_libretranslate_reply_outside_the_protocol_is_malformed(reply: Any, problem: str) -> None:
    with pytest.raises(MalformedReply, match=problem):
        parse_libre(reply, 2)


@pytest.mark.parametrize(
    "content",
    [
        '["가", "나"]',
        '```json\n["가", "나"]\n```',
        'Here are the translations:\n["가", "나"]',
    ],
)
def test_a_chat_answer_holding_the_array_is_accepted(content: str) -> None:
    assert parse_chat(chat(content), 2) == ["가", "나"]


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ({"choices": []}, r"no choices\[0\].message.content"),
        ({"error": "x"}, r"no choices\[0\]"),
        (chat(None), "content is NoneType, not text"),
        (chat('["가"'), "no JSON array"),
        (chat("가, 나"), "no JSON array"),
        (chat('["가", 나]'), "not valid JSON"),
        (chat('["가", "나", "다"]'), "3 translations for 2 texts"),
        (chat('[["가"], "나"]'), "translation 0 is list"),
        (chat('["가", "나"]', finish_reason="length"), "cut off"),
    ],
)
def test_a_chat_answer_outside_the_contract_is_malformed(reply: Any, problem: str) -> None:
    with pytest.raises(MalformedReply, match=problem):
        parse_chat(reply, 2)


def test_an_empty_array_is_right_for_no_texts() -> None:
    assert parse_content("[]", 0) == []


def test_the_libretranslate_endpoint_is_the_base_url_plus_translate() -> None:
    assert endpoint("http://lt:5000") == "http://lt:5000/translate"
    assert endpoint("http://lt:5000/") == "http://lt:5000/translate"
    assert endpoint("http://lt:5000/translate") == "http://lt:5000/translate"


async def test_blank_texts_are_not_sent_and_come_back_as_they_were() -> None:
    sent: list[list[str]] = []

    async def send(texts: list[str]) -> list[str]:
        sent.append(texts)
        return [f"<{text}>" for text in texts]

    metrics = TranslateMetrics(CollectorRegistry(), "test")
    assert await translate_batch(["a", " ", "", "b"], send, metrics) == ["<a>", " ", "", "<b>"]
    assert sent == [["a", "b"]]


async def test_no_request_is_made_for_an_empty_or_all_blank_batch() -> None:
    async def send(texts: list[str]) -> list[str]:
        raise AssertionError("no request expected")

    metrics = TranslateMetrics(CollectorRegistry(), "test")
    assert await translate_batch([], send, metrics) == []
    assert await translate_batch(["", "  "], send, metrics) == ["", "  "]


def test_the_chat_request_asks_for_an_array_of_as_many_translations_in_korean() -> None:
    settings = TranslateSettings("openai", translate_url="http://llm/v1", translate_model="m")
    translator: Any = build_translator(settings, None, CollectorRegistry())
    request = translator.request(["包邮", "新品"])
    system, user = request["messages"]
    assert request["model"] == "m"
    assert "Simplified Chinese to Korean" in system["content"] and "exactly 2 strings" in system["content"]
    assert user["content"] == '["包邮", "新品"]'
    assert json.loads(user["content"]) == ["包邮", "新品"]


async def test_the_glossary_translator_keeps_order_and_counts_untranslated_runs() -> None:
    registry = CollectorRegistry()
    translator = build_translator(TranslateSettings(), None, registry)
    assert await translator.translate([]) == []
    assert await translator.translate(["包邮", "某某新品", ""]) == ["무료배송", "某某 신상품", ""]
    assert registry.get_sample_value("millstream_translate_untranslated_segments_total") == 1
    assert registry.get_sample_value("millstream_translate_requests_total", {"provider": "glossary"}) == 1
    assert registry.get_sample_value("millstream_translate_texts_total", {"provider": "glossary"}) == 3
