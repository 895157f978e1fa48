"""TranslateSettings: defaults, MILLSTREAM_* variables, and start-up errors that name the variable."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from processors.translate.translator import GlossaryTranslator, TranslateSettings, build_translator
from streams.errors import ConfigError
from streams.settings import check_unknown, load, registered_sections

URL = "http://127.0.0.1:5000"


def test_the_default_is_the_embedded_glossary_from_chinese_to_korean() -> None:
    settings = TranslateSettings()
    assert (settings.translate_provider, settings.source_lang, settings.target_lang) == ("glossary", "zh", "ko")
    assert settings.translate_rate == 0


def test_settings_are_read_from_millstream_variables() -> None:
    settings = load(TranslateSettings, {
        "MILLSTREAM_TRANSLATE_PROVIDER": "openai",
        "MILLSTREAM_TRANSLATE_URL": "https://llm.internal/v1",
        "MILLSTREAM_TRANSLATE_MODEL": "qwen2.5-7b-instruct",
        "MILLSTREAM_TRANSLATE_API_KEY": "sk-test",
        "MILLSTREAM_TRANSLATE_RATE": "2.5",
        "MILLSTREAM_TRANSLATE_TIMEOUT": "12",
        "MILLSTREAM_SOURCE_LANG": "zh",
        "MILLSTREAM_TARGET_LANG": "en",
    })
    assert settings.translate_rate == 2.5 and settings.translate_timeout == 12.0
    assert settings.target_lang == "en" and settings.translate_model == "qwen2.5-7b-instruct"


def test_the_section_is_registered_so_its_variables_are_known_to_every_command() -> None:
    sections = registered_sections()
    assert TranslateSettings in sections
    check_unknown({"MILLSTREAM_TRANSLATE_URL": URL}, sections)
    with pytest.raises(ConfigError, match="did you mean MILLSTREAM_TRANSLATE_URL"):
        check_unknown({"MILLSTREAM_TRANSLATE_URLS": URL}, sections)


def test_the_api_key_is_kept_out_of_the_repr() -> None:
    settings = TranslateSettings("libretranslate", translate_url=URL, translate_api_key="secret")
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "variable", "problem"),
    [
        ({"translate_provider": "deepl"}, "MILLSTREAM_TRANSLATE_PROVIDER", "not one of glossary"),
        ({"translate_provider": "openai", "translate_model": "m"}, "MILLSTREAM_TRANSLATE_URL", "needs"),
        ({"translate_provider": "openai", "translate_url": URL}, "MILLSTREAM_TRANSLATE_MODEL", "model"),
        ({"translate_provider": "libretranslate"}, "MILLSTREAM_TRANSLATE_URL", "needs the server's URL"),
        ({"translate_provider": "libretranslate", "translate_url": "ftp://x"}, "MILLSTREAM_TRANSLATE_URL",
         "http"),
        ({"translate_provider": "libretranslate", "translate_url": "http://"}, "MILLSTREAM_TRANSLATE_URL",
         "with a host"),
        ({"target_lang": "en"}, "MILLSTREAM_TARGET_LANG", "glossary provider translates zh -> ko only"),
        ({"source_lang": "ja"}, "MILLSTREAM_SOURCE_LANG", "glossary provider"),
        ({"source_lang": "chinese!"}, "MILLSTREAM_SOURCE_LANG", "language code"),
        ({"target_lang": "zh"}, "MILLSTREAM_TARGET_LANG", "must differ"),
        ({"translate_rate": -1.0}, "MILLSTREAM_TRANSLATE_RATE", ">= 0"),
        ({"translate_timeout": 0.0}, "MILLSTREAM_TRANSLATE_TIMEOUT", "> 0"),
        ({"translate_max_attempts": 0}, "MILLSTREAM_TRANSLATE_MAX_ATTEMPTS", ">= 1"),
    ],
)
def test_invalid_settings_fail_at_start_up_naming_the_variable(
    fields: dict[str, Any], variable: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as raised:
        TranslateSettings(**fields)
    assert raised.value.variable == variable


def test_other_languages_are_accepted_by_the_http_providers() -> None:
    settings = TranslateSettings("libretranslate", source_lang="zh-Hans", target_lang="en", translate_url=URL)
    assert settings.source_lang == "zh-Hans"


def test_the_call_budget_covers_every_attempt_its_rate_limit_wait_and_the_backoffs() -> None:
    settings = TranslateSettings("openai", translate_url=URL, translate_model="m", translate_timeout=10,
                                 translate_max_attempts=3, translate_rate=1)
    assert settings.call_budget == 3 * (10 + 10) + 0.5 + 1.0
    assert TranslateSettings(translate_timeout=10, translate_max_attempts=3).call_budget == 30 + 1.5


def test_the_glossary_translator_needs_no_redis() -> None:
    translator = build_translator(TranslateSettings(), None, CollectorRegistry())
    assert isinstance(translator, GlossaryTranslator)


def test_a_rate_limit_without_redis_is_refused() -> None:
    settings = TranslateSettings("libretranslate", translate_url=URL, translate_rate=5)
    with pytest.raises(ValueError, match="needs a Redis client"):
        build_translator(settings, None, CollectorRegistry())


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.1:5000/", "MILLSTREAM_TRANSLATE_URL: 'http://127.1:5000/': its host '127.1' is a rare IP address "
                           "format (RFC 3986 section 7.4)"),
    ("http://2130706433/", "MILLSTREAM_TRANSLATE_URL: 'http://2130706433/': its host '2130706433' is a rare IP "
                           "address format"),
    ("http://ops:pw-9876@[::1/v1", "MILLSTREAM_TRANSLATE_URL: 'http://ops:***@[::1/v1' is not a URL: Invalid IPv6 URL"),
    ("ftp://ops:pw-9876@host/", "MILLSTREAM_TRANSLATE_URL: 'ftp://ops:***@host/' must be an http:// or https:// URL"),
])
def test_a_provider_url_the_egress_policy_cannot_judge_is_refused_at_start_up_without_its_password(
        url: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        TranslateSettings("libretranslate", translate_url=url)
    assert str(refused.value).startswith(message)
    assert "pw-9876" not in str(refused.value)


def test_settings_sections_load_without_the_image_extras() -> None:
    import subprocess
    import sys

    probe = ("import sys; from streams.settings import registered_sections; registered_sections(); "
             "print(sorted(m for m in ('aiohttp', 'numpy', 'PIL', 'yarl', 'tritonclient') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
