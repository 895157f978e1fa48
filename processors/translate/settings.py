"""The ``translate`` settings section: which provider, languages, URL, key, rate and timeouts.

Its own module, importing only the standard library and ``streams``: every
``millstream`` command loads the registered settings sections (to know every
``MILLSTREAM_*`` variable), also where the image pipeline's extras (aiohttp)
are not installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from processors.egress.policy import EgressRefused, parse_literal
from processors.translate.glossary import SOURCE_LANG, TARGET_LANG
from streams.errors import ConfigError
from streams.policy import RetryPolicy
from streams.settings import variable
from streams.text.redact import redact

PROVIDERS = ("glossary", "libretranslate", "openai")
# The backoff between the HTTP attempts of one call (processors.translate.http.HttpPolicy).
PROVIDER_RETRY = RetryPolicy(base=0.5, factor=2.0, cap=8.0)
_LANG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


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
        policy = PROVIDER_RETRY
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
    """An http(s) URL with a host the egress policy can judge; errors show it without credentials."""
    name = variable("translate_url")
    if not url:
        raise ConfigError(name, f"the {provider} provider needs the server's URL")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as error:
        raise ConfigError(name, f"{redact(url)!r} is not a URL: {error}") from None
    if parts.scheme not in {"http", "https"} or not hostname:
        raise ConfigError(name, f"{redact(url)!r} must be an http:// or https:// URL with a host")
    try:
        parse_literal(hostname)
    except EgressRefused as refused:
        raise ConfigError(name, f"{redact(url)!r}: {refused}") from None
