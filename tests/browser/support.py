"""What the browser tests share: ``expect`` (None without playwright), waiting for the live stream, reading dead letters and status back from Redis."""

from __future__ import annotations

import re
from typing import Any

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (fails in CI) before any test can call it
    expect = None

from streams.redis.tasks import task_status
from tests.browser.stack import Stack


def letters_of(stack: Stack, stage: str) -> dict[str, dict[bytes, bytes]]:
    """The dead letters of ``stage`` in Redis, by request id."""
    found = stack.call(stack.redis.xrange(stack.keys.dlq(stage)))
    return {fields[b"rid"].decode(): {b"id": entry, **fields} for entry, fields in found}


def reached(stack: Stack, request_id: str, stage: str, state: str) -> Any:
    async def check() -> Any:
        status = await task_status(stack.redis, stack.keys, request_id, stack.settings.status_ttl)
        return status if status and (status["stage"], status["state"]) == (stage, state) else None
    return check


def wait_live(page: Any) -> None:
    """Wait until the page's event stream is live and has been for one stats interval.

    The API's events hub starts tailing when a client joins, a moment after
    the first queue-stats event: an event published in between may be missed,
    the second queue-stats event comes after it.
    """
    expect(page.locator("#live-state")).to_have_attribute("data-heard", re.compile(r"^([2-9]|\d{2,})$"),
                                                          timeout=10_000)
