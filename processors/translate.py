"""Translation of the texts of one image: the Translator contract, its settings, its factory.

Providers (``MILLSTREAM_TRANSLATE_PROVIDER``):

- ``glossary`` (default): embedded, no network; a shipped Chinese -> Korean glossary
  of e-commerce phrases (processors.translate_glossary).
- ``libretranslate``: a LibreTranslate-compatible server (processors.translate_libre).
- ``openai``: an OpenAI-compatible chat-completions API (processors.translate_openai).

The HTTP providers send the texts of one image in one request, share one rate
limit across all workers (``streams.ratelimit``, a key in Redis), and retry
transient failures with jittered backoff (processors.translate_http). Every
translator raises only ``RetryableError`` or ``PermanentError`` subclasses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from processors.translate_glossary import SOURCE_LANG, TARGET_LANG, Glossary, load_glossary
from processors.translate_http import HttpPolicy, JsonPoster
from processors.translate_libre import LibreTranslator
from processors.translate_metrics import TranslateMetrics
from processors.translate_openai import ChatTranslator
from streams.errors import ConfigError
from streams.policy import RetryPolicy
from streams.ratelimit import Limiter, Rate, RateLimiter, Unlimited
from streams.settings import variable

PROVIDERS = ("glossary", "libretranslate", "openai")
# Callers pass keys.prefix + ":ratelimit:translate" so the key carries the pipeline's hash tag.
DEFAULT_RATELIMIT_KEY = "ms:{imgtr}:ratelimit:translate"
_LANG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


class Translator(Protocol):
    async def translate(self, texts: Sequence[str]) -> list[str]:
        """The translations of ``texts``, same length and order; ``[]`` for ``[]`` without a call."""
        ...

    async def aclose(self) -> None:
        """Release connections; the translator may be used again afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class TranslateSettings:
    """The ``translate`` settings section (entry point ``millstream.settings``)."""

    translate_provider: str = "glossary"
    source_lang: str = SOURCE_LANG
    target_lang: str = TARGET_LANG
    translate_url: str = ""
    translate_api_key: str = field(default="", repr=False)  # kept out of logs
    translate_model: str = ""
    translate_rate: float = 0.0  # requests/s shared by all workers; 0 = unlimited
    translate_timeout: float = 30.0  # seconds per HTTP attempt
    translate_max_attempts: int = 3  # HTTP attempts per call before the stage's retry takes over

    def __post_init__(self) -> None:
        if self.translate_provider not in PROVIDERS:
            raise ConfigError(variable("translate_provider"),
                              f"{self.translate_provider!r} is not one of {', '.join(PROVIDERS)}")
        for name in ("source_lang", "target_lang"):
            if not _LANG.match(getattr(self, name)):
                raise ConfigError(variable(name), f"{getattr(self, name)!r} is not a language code (zh, ko)")
        if self.source_lang.lower() == self.target_lang.lower():
            raise ConfigError(variable("target_lang"), "must differ from MILLSTREAM_SOURCE_LANG")
        if self.translate_rate < 0:
            raise ConfigError(variable("translate_rate"), "must be >= 0 (0 = unlimited)")
        if self.translate_timeout <= 0:
            raise ConfigError(variable("translate_timeout"), "must be > 0 seconds")
        if self.translate_max_attempts < 1:
            raise ConfigError(variable("translate_max_attempts"), "must be >= 1")
        self._check_provider()

    @property
    def call_budget(self) -> float:
        """The longest one translate call can take (a floor for the stage's timeout).

        Every attempt may wait up to ``translate_timeout`` for a rate-limit slot and
        as long again for the answer; the backoffs between attempts come on top.
        """
        per_attempt = self.translate_timeout * (2 if self.translate_rate else 1)
        policy = HttpPolicy().retry
        backoffs = sum(policy.ceiling(n) for n in range(1, self.translate_max_attempts))
        return self.translate_max_attempts * per_attempt + backoffs

    def _check_provider(self) -> None:
        if self.translate_provider == "glossary":
            for name, wanted in (("source_lang", SOURCE_LANG), ("target_lang", TARGET_LANG)):
                if _base(getattr(self, name)) != wanted:
                    raise ConfigError(variable(name), f"the glossary provider translates {SOURCE_LANG} -> "
                                      f"{TARGET_LANG} only; set MILLSTREAM_TRANSLATE_PROVIDER to "
                                      "libretranslate or openai for other languages")
            return
        _check_url(self.translate_url, self.translate_provider)
        if self.translate_provider == "openai" and not self.translate_model:
            raise ConfigError(variable("translate_model"), "the openai provider needs a model name")


def _base(lang: str) -> str:
    return re.split(r"[-_]", lang.lower())[0]


def _check_url(url: str, provider: str) -> None:
    name = variable("translate_url")
    if not url:
        raise ConfigError(name, f"the {provider} provider needs the server's URL")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(name, f"{url!r} must be an http:// or https:// URL with a host")


class GlossaryTranslator:
    """The embedded translator; counts the Chinese runs it had to leave as they were."""

    def __init__(self, glossary: Glossary, metrics: TranslateMetrics) -> None:
        self._glossary, self._metrics = glossary, metrics

    async def translate(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        self._metrics.requests.inc()
        self._metrics.texts.inc(len(texts))
        with self._metrics.seconds.time():
            results = [self._glossary.translate(text) for text in texts]
        self._metrics.untranslated.inc(sum(len(r.untranslated) for r in results))
        return [r.text for r in results]

    async def aclose(self) -> None:
        return None


def build_translator(
    settings: TranslateSettings, redis: Redis | None, registry: CollectorRegistry, *,
    ratelimit_key: str = DEFAULT_RATELIMIT_KEY, retry: RetryPolicy | None = None,
) -> Translator:
    """The translator ``settings`` name, its metrics registered in ``registry``.

    ``redis`` holds the shared rate limit (needed when ``translate_rate`` > 0);
    ``retry`` is the backoff between HTTP attempts of one call.
    """
    provider = settings.translate_provider
    metrics = TranslateMetrics(registry, provider)
    if provider == "glossary":
        return GlossaryTranslator(load_glossary(), metrics)
    policy = HttpPolicy(settings.translate_timeout, settings.translate_max_attempts,
                        retry or HttpPolicy().retry)
    poster = JsonPoster(provider, policy, _limiter(settings, redis, ratelimit_key), metrics)
    url, key = settings.translate_url, settings.translate_api_key
    if provider == "libretranslate":
        return LibreTranslator(poster, metrics, url, settings.source_lang, settings.target_lang, key)
    return ChatTranslator(poster, metrics, url, settings.translate_model, settings.source_lang,
                          settings.target_lang, key)


def _limiter(settings: TranslateSettings, redis: Redis | None, key: str) -> Limiter:
    if settings.translate_rate == 0:
        return Unlimited()
    if redis is None:
        raise ValueError("a translate rate limit needs a Redis client to share it between workers")
    # Wait at most one attempt's timeout for a slot; past that the stage retries later.
    return RateLimiter(redis, key, Rate(settings.translate_rate), max_wait=settings.translate_timeout)
