"""Translation of the texts of one image: the Translator contract, its settings, its factory.

Providers (``MILLSTREAM_TRANSLATE_PROVIDER``):

- ``glossary`` (default): embedded, no network; a shipped Chinese -> Korean glossary
  of e-commerce phrases (processors.translate.glossary).
- ``libretranslate``: a LibreTranslate-compatible server (processors.translate.libre).
- ``openai``: an OpenAI-compatible chat-completions API (processors.translate.openai).

The HTTP providers send the texts of one image in one request, share one rate
limit across all workers (``streams.redis.ratelimit``, a key in Redis), and retry
transient failures with jittered backoff (processors.translate.http). Every
translator raises only ``RetryableError`` or ``PermanentError`` subclasses.

That limit counts provider requests, not the operate stage's attempts (one
attempt makes none, or several with HTTP retries), so it stays here rather
than becoming the stage's ``rate`` (docs/controls/rate-limits.md, decision 0032).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Protocol

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from processors.translate.glossary import Glossary, GlossaryResult, load_glossary
from processors.translate.http import HttpPolicy, JsonPoster
from processors.translate.libre import LibreTranslator
from processors.translate.metrics import TranslateMetrics
from processors.translate.openai import ChatTranslator
from processors.translate.settings import TranslateSettings
from streams.policy import RetryPolicy
from streams.redis.ratelimit import Limiter, Rate, RateLimiter, Unlimited

log = logging.getLogger("millstream.translate")
# The request id of the task being translated, for the per-task log line; the operate
# stage sets it around its translate call (the Translator contract takes texts only).
current_task: ContextVar[str | None] = ContextVar("millstream_translate_task", default=None)

# Callers pass keys.prefix + ":ratelimit:translate" so the key carries the pipeline's hash tag.
DEFAULT_RATELIMIT_KEY = "ms:{imgtr}:ratelimit:translate"


class Translator(Protocol):
    async def translate(self, texts: Sequence[str]) -> list[str]:
        """The translations of ``texts``, same length and order; ``[]`` for ``[]`` without a call."""
        ...

    async def aclose(self) -> None:
        """Release connections; the translator may be used again afterwards."""
        ...


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
        self._observe(results)
        return [r.text for r in results]

    def _observe(self, results: Sequence[GlossaryResult]) -> None:
        """Count the Chinese left untranslated, and log it: one call is one task's texts."""
        han = sum(r.han_chars for r in results)
        left = sum(r.untranslated_chars for r in results)
        self._metrics.untranslated.inc(sum(len(r.untranslated) for r in results))
        self._metrics.source_chars.inc(han)
        self._metrics.untranslated_chars.inc(left)
        if han:
            self._metrics.untranslated_share.observe(left / han)
        runs = [run for r in results for run in r.untranslated]
        task = current_task.get()
        log.info("glossary%s: %d texts, %d Han characters, %d left untranslated (%.1f%%)%s",
                 f" [{task}]" if task else "", len(results), han, left, 100 * left / max(han, 1),
                 f": {' '.join(runs)[:200]}" if runs else "")

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
    url, key = settings.translate_url, settings.translate_api_key
    poster = JsonPoster(provider, policy, _limiter(settings, redis, ratelimit_key), metrics,
                        base_url=url, secrets=(key,))
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
