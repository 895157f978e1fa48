"""The chat-completions provider: what it asks, and how it checks what the model answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from processors.translate.http import TranslateRejected
from processors.translate.translator import Translator, build_translator
from streams.policy import RetryPolicy
from tests.support.translate_fakes import FakeTranslateServer, Reply

TEXTS = ["包邮", "新品"]


@pytest.fixture
async def server() -> AsyncIterator[FakeTranslateServer]:
    async with FakeTranslateServer() as server:
        yield server


@pytest.fixture
async def translator(server: FakeTranslateServer) -> AsyncIterator[Translator]:
    settings = server.settings("openai", translate_api_key="sk-test", translate_max_attempts=3)
    translator = build_translator(settings, None, CollectorRegistry(), retry=RetryPolicy(base=0.01, cap=0.02))
    yield translator
    await translator.aclose()


async def test_the_request_names_the_model_and_sends_the_texts_as_a_json_array(translator, server):
    await translator.translate(TEXTS)
    (seen,) = server.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Authorization"] == "Bearer sk-test"
    assert seen.body["model"] == "fake-model"
    system, user = seen.body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert json.loads(user["content"]) == TEXTS


async def test_an_answer_in_a_code_fence_is_accepted(translator, server):
    server.then(Reply(content='```json\n["무료배송", "신상품"]\n```'))
    assert await translator.translate(TEXTS) == ["무료배송", "신상품"]


async def test_an_answer_of_the_wrong_length_is_asked_again(translator, server):
    server.then(Reply(content='["무료배송"]'))
    assert await translator.translate(TEXTS) == ["[ko] 包邮", "[ko] 新品"]
    assert len(server.requests) == 2


async def test_an_answer_that_stays_wrong_is_permanent_and_says_what_was_wrong(translator, server):
    server.then(*[Reply(content='["무료배송"]')] * 3)
    with pytest.raises(TranslateRejected, match="malformed reply 3 times in a row, last: 1 translations for 2"):
        await translator.translate(TEXTS)


async def test_an_answer_that_is_not_strings_is_malformed(translator, server):
    server.then(*[Reply(content='[{"text": "무료배송"}, 2]')] * 3)
    with pytest.raises(TranslateRejected, match="translation 0 is dict, not a string"):
        await translator.translate(TEXTS)


async def test_a_cut_off_answer_is_asked_again(translator, server):
    server.then(Reply(content='["무료', finish_reason="length"))
    assert await translator.translate(TEXTS) == ["[ko] 包邮", "[ko] 新品"]
