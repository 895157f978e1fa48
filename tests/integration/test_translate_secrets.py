"""A provider's errors never carry its API key: a real server on 127.0.0.1 that redirects and echoes.

Before, a redirect loop ended in aiohttp's TooManyRedirects, whose repr holds
the request headers (``Authorization: Bearer <key>``), and that text reached
error records, img:translate:error and webhook bodies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from processors.translate.http import MAX_REPLY_BYTES, TranslateRejected, TranslateUnavailable
from processors.translate.translator import TranslateSettings, Translator, build_translator
from streams.errors import ConfigError
from streams.policy import RetryPolicy

KEY = "sk-test-SECRET0123456789"


def echo(request: web.Request, body: bytes) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
    return f"you sent:\n{headers}\n\n{body.decode()}\nrepr: {dict(request.headers)!r}"


@pytest.fixture
async def base() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        body, route = await request.read(), request.match_info["route"]
        here = f"http://127.0.0.1:{request.url.port}"
        if route == "loop":
            return web.Response(status=307, headers={"Location": f"{here}{request.path}"})
        if route == "moved":
            return web.Response(status=301, headers={"Location": f"http://admin:hunter22@10.0.0.5/v1?api_key={KEY}"})
        if route == "echo400":
            return web.Response(status=400, text=echo(request, body))
        if route == "echo503":
            return web.Response(status=503, text=echo(request, body))
        if route == "key401":
            return web.Response(status=401, text=f'{{"error": "invalid key {KEY}"}}')
        if route == "huge":
            return web.Response(status=200, body=b'["' + b"a" * (5 * 1024 * 1024) + b'"]')
        if route == "deep":
            return web.Response(status=200, body=b"[" * 5000 + b"]" * 5000)
        return web.Response(status=200, text=f"<html>not json; your key is {KEY}</html>")

    app = web.Application()
    app.router.add_post("/{route}/chat/completions", handle)
    app.router.add_post("/{route}/translate", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def make() -> AsyncIterator[object]:
    made: list[Translator] = []

    def build(provider: str, url: str) -> Translator:
        settings = TranslateSettings(provider, translate_url=url, translate_model="m", translate_api_key=KEY,
                                     translate_max_attempts=2, translate_timeout=5.0)
        made.append(build_translator(settings, None, CollectorRegistry(), retry=RetryPolicy(base=0.01, cap=0.01)))
        return made[-1]

    yield build
    for translator in made:
        await translator.aclose()


def assert_no_secret(error: BaseException) -> None:
    text = str(error)
    assert KEY not in text and "SECRET0123" not in text, text
    assert "Bearer sk" not in text and "hunter22" not in text, text
    chained = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert chained is None, "the library's exception (whose repr holds the headers) is not chained"


async def test_a_redirect_loop_is_rejected_at_the_first_hop_without_the_authorization_header(base, make):
    with pytest.raises(TranslateRejected) as caught:
        await make("openai", f"{base}/loop").translate(["包邮"])
    assert str(caught.value) == (
        f"openai: HTTP 307: redirected to {base}/loop/chat/completions; redirects are not followed: "
        "set MILLSTREAM_TRANSLATE_URL to the final URL")
    assert caught.value.kind == "redirect" and caught.value.status == 307
    assert_no_secret(caught.value)


async def test_a_redirect_names_its_location_without_credentials_or_key(base, make):
    with pytest.raises(TranslateRejected) as caught:
        await make("openai", f"{base}/moved").translate(["包邮"])
    assert str(caught.value) == (
        "openai: HTTP 301: redirected to http://10.0.0.5/v1?api_key=***; redirects are not followed: "
        "set MILLSTREAM_TRANSLATE_URL to the final URL")
    assert_no_secret(caught.value)


@pytest.mark.parametrize("provider", ["openai", "libretranslate"])
async def test_an_error_page_echoing_the_request_is_redacted(base, make, provider: str):
    with pytest.raises(TranslateRejected) as caught:
        await make(provider, f"{base}/echo400").translate(["包邮"])
    assert str(caught.value).startswith(f"{provider}: HTTP 400: you sent: ")
    assert_no_secret(caught.value)


async def test_a_retryable_error_echoing_the_headers_is_redacted(base, make):
    with pytest.raises(TranslateUnavailable) as caught:
        await make("openai", f"{base}/echo503").translate(["包邮"])
    assert "Authorization: ***" in str(caught.value)
    assert_no_secret(caught.value)


async def test_a_401_quoting_the_key_is_redacted_and_names_the_setting(base, make):
    with pytest.raises(TranslateRejected) as caught:
        await make("openai", f"{base}/key401").translate(["包邮"])
    assert str(caught.value) == 'openai: HTTP 401: {"error": "invalid key ***"} (check MILLSTREAM_TRANSLATE_API_KEY)'


async def test_a_malformed_reply_quoting_the_key_is_redacted_before_it_is_clipped(base, make):
    with pytest.raises(TranslateRejected) as caught:
        await make("openai", f"{base}/garbled").translate(["包邮"])
    assert str(caught.value) == ("openai: malformed reply 2 times in a row, last: not JSON: "
                                 "'<html>not json; your key is ***</html>'")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.1/v1", "its host '127.1' is a rare IP address format (RFC 3986 section 7.4); write the "
                            "address as four decimal numbers (a.b.c.d) or use a name"),
        ("http://0x7f000001/v1", "its host '0x7f000001' is a rare IP address format (RFC 3986 section 7.4); "
                                 "write the address as four decimal numbers (a.b.c.d) or use a name"),
    ],
)
async def test_a_provider_url_in_a_rare_numeric_form_is_refused_at_start_up(make, url: str, problem: str):
    with pytest.raises(ConfigError) as caught:
        make("openai", url)
    assert str(caught.value) == f"MILLSTREAM_TRANSLATE_URL: {url!r}: {problem}"


async def test_a_reply_over_the_size_limit_is_cut_off_unparsed(base, make):
    with pytest.raises(TranslateRejected) as caught:
        await make("libretranslate", f"{base}/huge").translate(["包邮"])
    assert str(caught.value) == ("libretranslate: malformed reply 2 times in a row, last: the reply is larger "
                                 f"than {MAX_REPLY_BYTES} bytes")


async def test_a_reply_nested_deeper_than_the_parser_allows_is_malformed_not_a_crash(base, make):
    with pytest.raises(TranslateRejected) as caught:
        await make("libretranslate", f"{base}/deep").translate(["包邮"])
    assert str(caught.value).startswith("libretranslate: malformed reply 2 times in a row, last: not JSON: '[[[[")


async def test_the_configured_host_is_open_but_a_request_elsewhere_on_loopback_is_not(base, make):
    translator = make("openai", f"{base}/loop")
    poster = translator._poster  # type: ignore[attr-defined]
    elsewhere = base.replace("127.0.0.1", "127.0.0.2")
    with pytest.raises(TranslateRejected) as caught:
        await poster.post(f"{elsewhere}/x", {}, {"Authorization": f"Bearer {KEY}"}, lambda data: data)
    assert str(caught.value) == (f"openai: refusing to connect to {elsewhere}/x: its address is loopback "
                                 "(RFC 1122); check MILLSTREAM_TRANSLATE_URL")
