"""Prometheus metrics of the translators, registered in a registry passed in.

- ``millstream_translate_requests_total{provider}``: translate calls that reached the
  provider (one per image: its texts go in one batch)
- ``millstream_translate_texts_total{provider}``: texts translated
- ``millstream_translate_attempts_total{provider}``: HTTP requests sent, retries included
- ``millstream_translate_errors_total{provider,kind}``: failed attempts by kind
  (rate_limited, unavailable, timeout, connection, rejected, malformed, throttled)
- ``millstream_translate_seconds{provider}``: one translate call, retries and waits included
- ``millstream_translate_ratelimit_wait_seconds_total{provider}``: time spent waiting
  for the rate limit shared by all workers
- ``millstream_translate_untranslated_segments_total``: glossary: runs of Chinese
  that no entry covered and that were left as they are
- ``millstream_translate_source_chars_total`` and
  ``millstream_translate_untranslated_chars_total``: glossary: Han characters read, and
  those left untranslated; their ratio over a window is the share left untranslated
  (``rate(untranslated_chars) / rate(source_chars)``)
- ``millstream_translate_untranslated_share``: glossary: that share per translate call
  (one call per task), as a histogram, so the tasks that kept much Chinese can be counted
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

SHARE_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
SECONDS_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class TranslateMetrics:
    """Every collector of the translators; the provider label is bound once."""

    def __init__(self, registry: CollectorRegistry, provider: str) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ("provider",)) -> Counter:
            return Counter(f"millstream_translate_{name}", doc, labels, registry=registry)

        self.provider = provider
        self.requests = counter("requests", "Translate calls sent to the provider.").labels(provider)
        self.texts = counter("texts", "Texts translated.").labels(provider)
        self.attempts = counter("attempts", "HTTP requests sent to the provider, retries included.").labels(
            provider
        )
        self._errors = counter("errors", "Failed translation attempts by kind.", ("provider", "kind"))
        self.ratelimit_wait = counter(
            "ratelimit_wait_seconds", "Seconds spent waiting for the shared rate limit."
        ).labels(provider)
        self.untranslated = counter(
            "untranslated_segments", "Glossary: runs of source text left untranslated.", ()
        )
        self.source_chars = counter("source_chars", "Glossary: Han characters read.", ())
        self.untranslated_chars = counter(
            "untranslated_chars", "Glossary: Han characters left untranslated.", ()
        )
        self.untranslated_share = Histogram(
            "millstream_translate_untranslated_share",
            "Glossary: share of a call's Han characters left untranslated (one call per task).",
            registry=registry, buckets=SHARE_BUCKETS,
        )
        self.seconds = Histogram(
            "millstream_translate_seconds", "Duration of one translate call, retries included.",
            ["provider"], registry=registry, buckets=SECONDS_BUCKETS,
        ).labels(provider)

    def error(self, kind: str) -> None:
        self._errors.labels(self.provider, kind).inc()
