"""TranslateSettings: defaults, MILLSTREAM_* variables, and start-up errors that name the variable."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from processors.translate import GlossaryTranslator, TranslateSettings, build_translator
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
