"""The LibreTranslate provider speaks its protocol: q as a list, source, target, format, api_key."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from processors.translate.translator import build_translator
from tests.support.translate_fakes import FakeTranslateServer


async def test_the_request_follows_the_libretranslate_protocol():
    async with FakeTranslateServer(api_key="k") as server:
        settings = server.settings("libretranslate", translate_api_key="k", target_lang="en")
        translator = build_translator(settings, None, CollectorRegistry())
        try:
            assert await translator.translate(["包邮", " ", "新品"]) == ["[ko] 包邮", " ", "[ko] 新品"]
        finally:
            await translator.aclose()
    (seen,) = server.requests
    assert seen.path == "/translate"
    assert seen.body == {"q": ["包邮", "新品"], "source": "zh", "target": "en", "format": "text", "api_key": "k"}


async def test_no_api_key_is_sent_when_none_is_set():
    async with FakeTranslateServer() as server:
        translator = build_translator(server.settings("libretranslate"), None, CollectorRegistry())
        try:
            await translator.translate(["包邮"])
        finally:
            await translator.aclose()
    assert "api_key" not in server.requests[0].body
