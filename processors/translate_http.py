"""One JSON POST to a translation provider, with the shared rate limit, timeouts and retries.

Each attempt first takes a slot of the rate limit shared by all workers
(``streams.ratelimit``), then sends one request under ``timeout`` seconds.

=================================  ==========================  =====================
outcome of an attempt              retried here?               finally raised
=================================  ==========================  =====================
408, 425, 429, 5xx, timeout,       yes, with full-jitter       TranslateUnavailable
connection error                   backoff (at least the       (retryable: the stage
                                   server's Retry-After)       retries later)
other 4xx (bad request, bad key)   no                          TranslateRejected
a reply that breaks the protocol   yes: a model may answer     TranslateRejected
                                   well the next time          (permanent) naming it
local rate limit too far away      no                          streams RateLimited
=================================  ==========================  =====================
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from processors.translate_metrics import TranslateMetrics
from streams.errors import PermanentError, RetryableError
from streams.policy import RetryPolicy
from streams.ratelimit import Limiter, RateLimited

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_HINTS = {401: "check MILLSTREAM_TRANSLATE_API_KEY", 403: "check MILLSTREAM_TRANSLATE_API_KEY",
          404: "check MILLSTREAM_TRANSLATE_URL"}


class TranslateUnavailable(RetryableError):
    """The provider could not answer now (overloaded, down, slow); the same call may succeed later."""

    def __init__(self, message: str, *, provider: str, kind: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider, self.kind, self.status, self.retry_after = provider, kind, status, retry_after


class TranslateRejected(PermanentError):
    """The provider refused the request, or kept answering outside its protocol."""

    def __init__(self, message: str, *, provider: str, kind: str, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider, self.kind, self.status = provider, kind, status


class MalformedReply(ValueError):
    """Raised by a reply parser: the answer does not follow the provider's protocol."""


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Per-attempt ``timeout`` (seconds), attempts per call, and the backoff between them."""

    timeout: float = 30.0
    max_attempts: int = 3
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(base=0.5, factor=2.0, cap=8.0))

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.max_attempts < 1:
            raise ValueError("HttpPolicy needs timeout > 0 and max_attempts >= 1")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["Retry-After"]))
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: the backoff alone decides


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class JsonPoster:
    """POSTs JSON for one provider; owns its aiohttp session (made on first use, in the loop)."""

    def __init__(self, provider: str, policy: HttpPolicy, limiter: Limiter, metrics: TranslateMetrics,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.provider, self.policy = provider, policy
        self._limiter, self._metrics = limiter, metrics
        self._rng, self._sleep = rng or random.Random(), sleep
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: Any, headers: Mapping[str, str], parse: Callable[[Any], T]) -> T:
        """The parsed reply; see the module docstring for what is retried and raised."""
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                return parse(await self._attempt(url, body, headers))
            except RateLimited:
                self._metrics.error("throttled")
                raise
            except TranslateRejected as error:
                self._metrics.error(error.kind)
                raise
            except TranslateUnavailable as error:
                self._metrics.error(error.kind)
                if attempt == self.policy.max_attempts:
                    raise
                await self._sleep(self._delay(attempt, error.retry_after))
            except MalformedReply as error:
                self._metrics.error("malformed")
                if attempt == self.policy.max_attempts:
                    raise TranslateRejected(
                        f"malformed reply {attempt} times in a row, last: {error}",
                        provider=self.provider, kind="malformed",
                    ) from error
                await self._sleep(self._delay(attempt, None))
        raise AssertionError("unreachable: the loop returns or raises")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = self.policy.retry.backoff(attempt, self._rng)
        return max(delay, min(retry_after or 0.0, self.policy.retry.cap))

    async def _attempt(self, url: str, body: Any, headers: Mapping[str, str]) -> Any:
        self._metrics.ratelimit_wait.inc(await self._limiter.acquire())
        self._metrics.attempts.inc()
        session = self._session_now()
        try:
            async with session.post(url, json=body, headers=dict(headers),
                                    timeout=aiohttp.ClientTimeout(total=self.policy.timeout)) as reply:
                text = (await reply.read()).decode("utf-8", "replace")
                self._check_status(reply.status, text, reply.headers)
        except TimeoutError:
            raise TranslateUnavailable(f"no answer within {self.policy.timeout:g} s",
                                       provider=self.provider, kind="timeout") from None
        except aiohttp.ClientError as error:
            raise TranslateUnavailable(f"request failed: {error!r}", provider=self.provider,
                                       kind="connection") from None
        try:
            return json.loads(text)
        except ValueError:
            raise MalformedReply(f"not JSON: {_clip(text, 120)!r}") from None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _check_status(self, status: int, text: str, headers: Mapping[str, str]) -> None:
        if status < 400:
            return
        detail = f"HTTP {status}: {_clip(text)}"
        if status in RETRYABLE_STATUS or status >= 500:
            kind = "rate_limited" if status == 429 else "unavailable"
            raise TranslateUnavailable(detail, provider=self.provider, kind=kind, status=status,
                                       retry_after=_retry_after(headers))
        hint = _HINTS.get(status)
        raise TranslateRejected(f"{detail} ({hint})" if hint else detail, provider=self.provider,
                                kind="rejected", status=status)


def checked_strings(items: Any, count: int) -> list[str]:
    """``items`` as a list of ``count`` strings; MalformedReply naming what is wrong otherwise."""
    if not isinstance(items, list):
        raise MalformedReply(f"expected a JSON array of {count} strings, got {type(items).__name__}")
    if len(items) != count:
        raise MalformedReply(f"{len(items)} translations for {count} texts")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise MalformedReply(f"translation {index} is {type(item).__name__}, not a string")
    return items


async def translate_batch(texts: Sequence[str], send: Callable[[list[str]], Awaitable[list[str]]],
                          metrics: TranslateMetrics) -> list[str]:
    """Send the texts that hold more than spaces in one call; blank ones come back as they were.

    OCR yields stray blank boxes; sending them costs tokens and invites a model
    to fill them in. No call at all when nothing is left.
    """
    wanted = [index for index, text in enumerate(texts) if text.strip()]
    result = list(texts)
    if not wanted:
        return result
    metrics.requests.inc()
    metrics.texts.inc(len(wanted))
    with metrics.seconds.time():
        translated = await send([texts[index] for index in wanted])
    for index, text in zip(wanted, translated, strict=True):
        result[index] = text
    return result
