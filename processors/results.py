"""The results stage: POST each task's outcome to its ``callback_url``, when it has one.

Reads the success stream and the error stream (one stage each). Webhook
targets pass the same address policy as image fetches (no loopback, private
or metadata addresses unless allowed), redirects are not followed, and every
call has a timeout. 429, 5xx, timeouts and connection errors are retried by
the stage's policy; other 4xx end as an error record of this stage, which the
legacy error mirror leaves alone (the task already has its outcome). The
stage's concurrency bounds how many webhooks run at once, so a slow receiver
never holds up other tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from processors.images_http import CheckedResolver, RefusedAddress
from processors.images_ssrf import AddressPolicy, parse_address
from streams.errors import InvalidPayload, PermanentError, RetryableError
from streams.legacy import error_contract, success_contract
from streams.message import Message, Outgoing

RETRY_STATUS = {408, 425, 429}


class WebhookUnavailable(RetryableError):
    """The receiver did not answer, or answered 429/5xx."""


class WebhookRejected(PermanentError):
    """The receiver refused the outcome (4xx)."""


def outcome(payload: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(callback_url, body) of a success record or an error record."""
    if "error_message" in payload:
        task = payload.get("payload")
        task = task if isinstance(task, Mapping) else {}
        return task.get("callback_url"), {"status": "error", **error_contract(payload)}
    return payload.get("callback_url"), {"status": "success", **success_contract(payload)}


class WebhookProcessor:
    def __init__(self, policy: AddressPolicy, timeout: float = 10.0,
                 resolver: aiohttp.abc.AbstractResolver | None = None) -> None:
        self._policy, self._timeout = policy, timeout
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, message: Message) -> list[Outgoing]:
        url, body = outcome(message.payload)
        if not url:
            return []
        self._check(url)
        try:
            async with self._open().post(url, json=body, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=self._timeout)) as response:
                status = response.status
        except RefusedAddress as refused:
            raise InvalidPayload(f"refusing to call back {url}: {refused}") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise WebhookUnavailable(f"callback to {url} failed: {error or type(error).__name__}") from None
        if status >= 500 or status in RETRY_STATUS:
            raise WebhookUnavailable(f"callback to {url} answered {status}; will retry")
        if status >= 300:
            raise WebhookRejected(f"callback to {url} answered {status}; check callback_url")
        return []

    def _check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise InvalidPayload(f"callback_url {url!r} must be an http(s) URL")
        literal = parse_address(parts.hostname)
        reason = self._policy.refusal(literal, parts.hostname) if literal is not None else None
        if reason:
            raise InvalidPayload(f"refusing to call back {url}: {reason}")

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = CheckedResolver(self._policy, self._resolver or aiohttp.ThreadedResolver())
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver),
                                                  trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
