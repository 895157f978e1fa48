"""One JSON POST to a translation provider, with the shared rate limit, timeouts and retries.

Each attempt first takes a slot of the rate limit shared by all workers
(``streams.redis.ratelimit``), then sends one request under ``timeout`` seconds.

=================================  ==========================  =====================
outcome of an attempt              retried here?               finally raised
=================================  ==========================  =====================
408, 425, 429, 5xx, timeout,       yes, with full-jitter       TranslateUnavailable
connection error                   backoff (at least the       (retryable: the stage
                                   server's Retry-After)       retries later)
other 4xx (bad request, bad key)   no                          TranslateRejected
a reply that breaks the protocol   yes: a model may answer     TranslateRejected
                                   well the next time          (permanent) naming it
a redirect (3xx)                   no: not followed            TranslateRejected
                                                               (set the final URL)
an address the egress policy       no                          TranslateRejected
refuses (processors.egress.policy)
local rate limit too far away      no                          streams RateLimited
=================================  ==========================  =====================

Requests go through the egress machinery (processors.egress.http): the
policy allows the configured provider host (``base_url``, set by the
operator; it may be on loopback) and refuses every other internal address;
no redirects are followed, no proxies come from the environment, no cookies
are kept. Error messages are our own words plus the provider's text clipped
and passed through ``streams.text.redact.redact`` with the provider's key as a
known secret, never ``repr()`` of aiohttp objects (which carries the request
headers, ``Authorization`` included).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson
from yarl import URL

from processors.egress.http import EgressClient, connect_host
from processors.egress.policy import AddressPolicy, EgressRefused, display_url
from processors.translate.metrics import TranslateMetrics
from processors.translate.settings import PROVIDER_RETRY
from streams.errors import PermanentError, RetryableError
from streams.policy import RetryPolicy
from streams.redis.ratelimit import Limiter, RateLimited
from streams.text.redact import redact

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# The translations of one image's texts are a few kilobytes; a larger reply is not an answer.
MAX_REPLY_BYTES = 4 * 1024 * 1024
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
    """Raised by a reply parser: the answer does not follow the provider's protocol.

    ``excerpt`` is the provider's text: JsonPoster redacts it before clipping, so a
    key the provider echoed can't be cut in half and escape the mask.
    """

    def __init__(self, problem: str, excerpt: str | None = None) -> None:
        super().__init__(problem if excerpt is None else f"{problem}: {_clip(excerpt, 120)!r}")
        self.problem, self.excerpt = problem, excerpt


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Per-attempt ``timeout`` (seconds), attempts per call, and the backoff between them."""

    timeout: float = 30.0
    max_attempts: int = 3
    retry: RetryPolicy = PROVIDER_RETRY  # frozen: one instance serves every policy

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


def provider_policy(base_url: str) -> AddressPolicy:
    """The default egress policy with the configured provider's host opened (EgressRefused if it is odd)."""
    if not base_url:
        return AddressPolicy()
    try:
        target = URL(base_url)
    except ValueError:
        raise EgressRefused("it cannot be parsed", kind="url") from None
    return AddressPolicy().opening(connect_host(target))


class JsonPoster:
    """POSTs JSON for one provider at ``base_url``; owns its egress client (its session is made in the loop).

    ``secrets`` (the provider's API key) are masked in every message this poster raises.
    """

    def __init__(self, provider: str, policy: HttpPolicy, limiter: Limiter, metrics: TranslateMetrics,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, *,
                 base_url: str = "", secrets: Sequence[str] = ()) -> None:
        self.provider, self.policy = provider, policy
        self._limiter, self._metrics = limiter, metrics
        self._rng, self._sleep = rng or random.Random(), sleep
        self._secrets = tuple(secret for secret in secrets if secret)
        self._base_url = base_url
        self._client: EgressClient | None = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

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
                        f"malformed reply {attempt} times in a row, last: {self._malformed(error)}",
                        provider=self.provider, kind="malformed",
                    ) from None
                await self._sleep(self._delay(attempt, None))
        raise AssertionError("unreachable: the loop returns or raises")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = self.policy.retry.backoff(attempt, self._rng)
        return max(delay, min(retry_after or 0.0, self.policy.retry.cap))

    def _malformed(self, error: MalformedReply) -> str:
        if error.excerpt is None:
            return error.problem
        return f"{error.problem}: {self._said(error.excerpt, 120)!r}"

    def _said(self, text: str, limit: int = 300) -> str:
        """Text that came from the provider or its library, fit for a record: redacted, then clipped."""
        return _clip(redact(text, self._secrets), limit)

    async def _attempt(self, url: str, body: Any, headers: Mapping[str, str]) -> Any:
        self._metrics.ratelimit_wait.inc(await self._limiter.acquire())
        self._metrics.attempts.inc()
        try:
            timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
            async with self._egress().request("POST", url, json=body, headers=dict(headers),
                                              timeout=timeout) as reply:
                body = await _read_at_most(reply, MAX_REPLY_BYTES)
                text = body.decode("utf-8", "replace")
                self._check_status(reply.status, text, reply.headers)
        except EgressRefused as refused:
            shown = display_url(url)
            message = f"refusing to connect to {shown}: {refused.problem}; check MILLSTREAM_TRANSLATE_URL"
            raise TranslateRejected(message, provider=self.provider, kind="refused") from None
        except TimeoutError:
            raise TranslateUnavailable(f"no answer within {self.policy.timeout:g} s",
                                       provider=self.provider, kind="timeout") from None
        except aiohttp.ClientError as error:
            raise TranslateUnavailable(f"request failed ({type(error).__name__}): {self._said(str(error))}",
                                       provider=self.provider, kind="connection") from None
        if len(body) > MAX_REPLY_BYTES:  # cut off one byte past the limit, never parsed
            raise MalformedReply(f"the reply is larger than {MAX_REPLY_BYTES} bytes")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:  # also nesting deeper than orjson's limit
            raise MalformedReply("not JSON", text) from None

    def _egress(self) -> EgressClient:
        if self._client is None:
            try:
                policy = provider_policy(self._base_url)
            except EgressRefused as refused:
                shown = display_url(self._base_url)
                message = f"MILLSTREAM_TRANSLATE_URL {shown} is refused: {refused.problem}"
                raise TranslateRejected(message, provider=self.provider, kind="refused") from None
            self._client = EgressClient(policy)
        return self._client

    def _check_status(self, status: int, text: str, headers: Mapping[str, str]) -> None:
        if 300 <= status < 400:
            location = display_url(self._said(headers.get("Location", "(no Location header)"), 200))
            raise TranslateRejected(f"HTTP {status}: redirected to {location}; redirects are not followed: "
                                    "set MILLSTREAM_TRANSLATE_URL to the final URL",
                                    provider=self.provider, kind="redirect", status=status)
        if status < 400:
            return
        detail = f"HTTP {status}: {self._said(text)}"
        if status in RETRYABLE_STATUS or status >= 500:
            kind = "rate_limited" if status == 429 else "unavailable"
            raise TranslateUnavailable(detail, provider=self.provider, kind=kind, status=status,
                                       retry_after=_retry_after(headers))
        hint = _HINTS.get(status)
        raise TranslateRejected(f"{detail} ({hint})" if hint else detail, provider=self.provider,
                                kind="rejected", status=status)


async def _read_at_most(reply: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first ``limit`` + 1 bytes: a reply cannot grow a worker's memory past the limit."""
    body = bytearray()
    async for chunk in reply.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return bytes(body[: limit + 1])
    return bytes(body)


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
