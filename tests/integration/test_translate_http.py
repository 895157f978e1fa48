"""Both HTTP providers against a local server speaking their protocol: batching, retries, errors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from processors.translate.http import TranslateRejected, TranslateUnavailable
from processors.translate.translator import TranslateSettings, Translator, build_translator
from streams.errors import PermanentError, RetryableError
from streams.policy import RetryPolicy
from streams.redis.keys import Keys
from tests.support.translate_fakes import FakeTranslateServer, Reply

FAST = RetryPolicy(base=0.01, factor=2.0, cap=0.02)
TEXTS = ["包邮", "新品", "限时折扣"]
Make = Callable[..., Translator]


@pytest.fixture(params=["libretranslate", "openai"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server() -> AsyncIterator[FakeTranslateServer]:
    async with FakeTranslateServer() as server:
        yield server


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def make(provider: str, server: FakeTranslateServer, registry: CollectorRegistry) -> AsyncIterator[Make]:
    """Build translators of ``provider`` pointing at ``server``; closed after the test."""
    made: list[Translator] = []

    def build(redis: Redis | None = None, registry: CollectorRegistry = registry, key: str = "",
              **fields: Any) -> Translator:
        settings = server.settings(provider, **{"translate_timeout": 5.0, **fields})
        extra = {"ratelimit_key": key} if key else {}
        made.append(build_translator(settings, redis, registry, retry=FAST, **extra))
        return made[-1]

    yield build
    for translator in made:
        await translator.aclose()


def errors(registry: CollectorRegistry, provider: str, kind: str) -> float | None:
    return registry.get_sample_value("millstream_translate_errors_total", {"provider": provider, "kind": kind})


async def test_the_texts_of_one_image_go_in_one_request_and_come_back_in_order(make: Make, server):
    assert await make().translate(TEXTS) == [f"[ko] {text}" for text in TEXTS]
    assert len(server.requests) == 1


async def test_each_image_is_one_request(make: Make, server):
    translator = make()
    for _ in range(3):
        await translator.translate(TEXTS)
    assert len(server.requests) == 3


async def test_an_empty_list_is_answered_without_a_request(make: Make, server):
    assert await make().translate([]) == []
    assert server.requests == []


async def test_429_and_503_are_retried_with_backoff_then_succeed(make: Make, server, registry, provider):
    server.then(Reply(429, '{"error": "slow down"}', headers={"Retry-After": "0"}), Reply(503, "busy"))
    assert await make().translate(TEXTS) == [f"[ko] {text}" for text in TEXTS]
    assert len(server.requests) == 3
    assert errors(registry, provider, "rate_limited") == 1 and errors(registry, provider, "unavailable") == 1
    assert registry.get_sample_value("millstream_translate_attempts_total", {"provider": provider}) == 3


async def test_a_server_that_stays_unavailable_ends_as_a_retryable_error(make: Make, server):
    server.then(*[Reply(503, "maintenance")] * 3)
    with pytest.raises(TranslateUnavailable, match="HTTP 503: maintenance") as raised:
        await make(translate_max_attempts=3).translate(TEXTS)
    assert isinstance(raised.value, RetryableError) and raised.value.status == 503
    assert len(server.requests) == 3


async def test_a_400_is_permanent_at_once_with_the_servers_message(make: Make, server, registry, provider):
    server.then(Reply(400, '{"error": "Invalid request: unsupported source language"}'))
    with pytest.raises(TranslateRejected, match=r"HTTP 400: .*unsupported source language") as raised:
        await make().translate(TEXTS)
    assert isinstance(raised.value, PermanentError) and raised.value.status == 400
    assert len(server.requests) == 1
    assert errors(registry, provider, "rejected") == 1


async def test_a_malformed_reply_is_asked_again_then_permanent_with_a_clear_message(make: Make, server):
    server.then(*[Reply(200, "<html>oops</html>")] * 3)
    with pytest.raises(TranslateRejected, match="malformed reply 3 times in a row, last: not JSON"):
        await make(translate_max_attempts=3).translate(TEXTS)
    assert len(server.requests) == 3


async def test_a_malformed_reply_then_a_good_one_succeeds(make: Make, server, registry, provider):
    server.then(Reply(200, '{"unexpected": true}'))
    assert await make().translate(TEXTS) == [f"[ko] {text}" for text in TEXTS]
    assert errors(registry, provider, "malformed") == 1


async def test_a_timeout_is_retried_and_then_the_answer_is_used(make: Make, server, registry, provider):
    server.then(Reply(hang=True))
    assert await make(translate_timeout=0.2).translate(TEXTS) == [f"[ko] {text}" for text in TEXTS]
    assert errors(registry, provider, "timeout") == 1


async def test_a_server_that_never_answers_ends_as_a_retryable_timeout(make: Make, server):
    server.then(Reply(hang=True), Reply(hang=True))
    with pytest.raises(TranslateUnavailable, match=r"no answer within 0\.2 s") as raised:
        await make(translate_timeout=0.2, translate_max_attempts=2).translate(TEXTS)
    assert raised.value.kind == "timeout" and isinstance(raised.value, RetryableError)


async def test_an_unreachable_server_is_retryable(provider: str, registry):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = TranslateSettings(provider, translate_url=f"{closed}/v1", translate_model="m",
                                 translate_max_attempts=2)
    translator = build_translator(settings, None, registry, retry=FAST)
    try:
        with pytest.raises(TranslateUnavailable, match="request failed") as raised:
            await translator.translate(TEXTS)
        assert raised.value.kind == "connection"
    finally:
        await translator.aclose()


async def test_a_wrong_api_key_is_permanent_and_names_the_variable_to_check(provider: str, registry):
    async with FakeTranslateServer(api_key="right") as server:
        translator = build_translator(server.settings(provider, translate_api_key="wrong"), None, registry)
        try:
            with pytest.raises(TranslateRejected, match="check MILLSTREAM_TRANSLATE_API_KEY"):
                await translator.translate(TEXTS)
            assert len(server.requests) == 1
        finally:
            await translator.aclose()


async def test_the_right_api_key_is_accepted(provider: str, registry):
    async with FakeTranslateServer(api_key="right") as server:
        translator = build_translator(server.settings(provider, translate_api_key="right"), None, registry)
        try:
            assert await translator.translate(["包邮"]) == ["[ko] 包邮"]
        finally:
            await translator.aclose()


async def test_workers_share_one_rate_limit(make: Make, server, redis: Redis, keys: Keys, provider):
    key = f"{keys.prefix}:ratelimit:translate"
    one = make(redis, CollectorRegistry(), key, translate_rate=20)
    two = make(redis, CollectorRegistry(), key, translate_rate=20)
    for translator in (one, two, one, two, one, two):
        await translator.translate(["包邮"])
    arrivals = [seen.at for seen in server.requests]
    assert arrivals[-1] - arrivals[0] >= 5 / 20 - 0.02, "six requests at 20/s span at least 0.25 s"

