"""The results stage: POST each task's outcome to its ``callback_url``, when it has one.

Reads the success stream and the error stream (one stage each). Webhook
targets pass the egress policy shared with image fetches (processors.egress.policy:
no loopback, private, special-purpose or metadata addresses unless allowed,
the host judged as the HTTP client will connect to it), redirects are not
followed, and every call has a timeout. 429, 5xx, timeouts and connection
errors are retried by the stage's policy; other answers end as an error
record of this stage.

A webhook's own failure never changes the status it reports: the error
webhook posts only error records of the task stages (``task_stages``), so the
record a refused success webhook leaves in the error stream is never posted
back as ``"status": "error"`` (nor are records of mirrors or of itself). The
``error_message`` of a body is redacted (streams.text.redact) with the process's
known secrets. The stage's concurrency bounds how many webhooks run at once,
so a slow receiver never holds up other tasks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from processors.egress.http import EgressClient
from processors.egress.policy import AddressPolicy, EgressRefused, display_url
from processors.legacy import error_contract, success_contract
from streams.errors import InvalidPayload, PermanentError, RetryableError
from streams.message import Message, Outgoing
from streams.text.redact import redact

RETRY_STATUS = {408, 425, 429}


class WebhookUnavailable(RetryableError):
    """The receiver did not answer, or answered 429/5xx."""


class WebhookRejected(PermanentError):
    """The receiver refused the outcome (4xx), or redirected it (not followed)."""


def outcome(payload: Mapping[str, Any], task_stages: Collection[str],
            secrets: Iterable[str] = ()) -> tuple[str | None, dict[str, Any]]:
    """(callback_url, body) of a success record or of an error record of a task stage.

    The URL is None for an error record of any other stage (a webhook, a
    mirror): that record is not the task's outcome, which was already posted.
    """
    if "error_message" in payload:
        if payload.get("stage") not in task_stages:
            return None, {}
        task = payload.get("payload")
        task = task if isinstance(task, Mapping) else {}
        body = {"status": "error", **error_contract(payload)}
        body["error_message"] = redact(body["error_message"], secrets)
        return _url(task.get("callback_url")), body
    return _url(payload.get("callback_url")), {"status": "success", **success_contract(payload)}


def _url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidPayload(f"callback_url must be a string, not {type(value).__name__}")
    return value


class WebhookProcessor:
    """POST the outcome in each message to its callback_url; see the module docstring."""

    def __init__(self, policy: AddressPolicy, timeout: float = 10.0, resolver: AbstractResolver | None = None,
                 *, task_stages: Collection[str], secrets: Iterable[str] = ()) -> None:
        self._timeout, self._task_stages, self._secrets = timeout, frozenset(task_stages), tuple(secrets)
        self._client = EgressClient(policy, resolver=resolver)

    async def __call__(self, message: Message) -> list[Outgoing]:
        url, body = outcome(message.payload, self._task_stages, self._secrets)
        if not url:
            return []
        shown = display_url(url)
        try:
            async with self._client.request("POST", url, json=body,
                                            timeout=aiohttp.ClientTimeout(total=self._timeout)) as response:
                status = response.status
        except EgressRefused as refused:
            raise InvalidPayload(f"refusing to call back {shown}: {refused.problem}; check callback_url "
                                 "(MILLSTREAM_FETCH_ALLOW_HOSTS opens hosts and networks)") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            problem = _describe(error, self._secrets)
            raise WebhookUnavailable(f"callback to {shown} failed: {problem}") from None
        if status >= 500 or status in RETRY_STATUS:
            raise WebhookUnavailable(f"callback to {shown} answered {status}; will retry")
        if 300 <= status < 400:
            raise WebhookRejected(f"callback to {shown} answered {status}; redirects are not followed: "
                                  "give the final URL in callback_url")
        if status >= 400:
            raise WebhookRejected(f"callback to {shown} answered {status}; check callback_url")
        return []

    async def aclose(self) -> None:
        await self._client.aclose()


def _describe(error: BaseException, secrets: Iterable[str]) -> str:
    # Our words plus aiohttp's str() redacted; never repr(), which carries request headers.
    if isinstance(error, TimeoutError):
        return "no answer in time"
    text = redact(str(error), secrets) or type(error).__name__
    return f"{type(error).__name__}: {text[:300]}"
