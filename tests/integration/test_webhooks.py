"""The results stage's webhooks against a local receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from processors.images_ssrf import AddressPolicy
from processors.results import WebhookProcessor, WebhookRejected, WebhookUnavailable
from streams.errors import InvalidPayload
from streams.message import Message

SUCCESS = {"request_id": "r1", "image_id": "i1", "image_url": "http://h/i1.png"}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict], list[int]]]:
    seen: list[dict] = []
    answers: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/hook", seen, answers
    await runner.cleanup()


def message(payload: dict) -> Message:
    return Message("1-0", "success", payload, "r1")


async def test_success_is_posted_to_the_callback(receiver):
    url, seen, _ = receiver
    hooks = WebhookProcessor(AddressPolicy.parse(("127.0.0.1",)))
    assert await hooks(message({**SUCCESS, "callback_url": url})) == []
    assert seen == [{"status": "success", **SUCCESS}]
    await hooks.aclose()


async def test_error_records_are_posted_with_the_task_ids(receiver):
    url, seen, _ = receiver
    hooks = WebhookProcessor(AddressPolicy.parse(("127.0.0.1",)))
    record = {"request_id": "r1", "error_message": "image URL returned 404", "timestamp": 1700000000,
              "stage": "ocr", "payload": {"request_id": "r1", "image_id": "i1", "callback_url": url}}
    await hooks(message(record))
    assert seen == [{"status": "error", "request_id": "r1", "image_id": "i1",
                     "error_message": "image URL returned 404", "timestamp": 1700000000}]
    await hooks.aclose()


async def test_5xx_is_retryable_and_4xx_is_permanent(receiver):
    url, _, answers = receiver
    hooks = WebhookProcessor(AddressPolicy.parse(("127.0.0.1",)))
    answers.extend([503, 404])
    with pytest.raises(WebhookUnavailable, match="answered 503"):
        await hooks(message({**SUCCESS, "callback_url": url}))
    with pytest.raises(WebhookRejected, match="answered 404; check callback_url"):
        await hooks(message({**SUCCESS, "callback_url": url}))
    await hooks.aclose()


async def test_loopback_callbacks_are_refused_unless_allowed(receiver):
    url, seen, _ = receiver
    hooks = WebhookProcessor(AddressPolicy.parse(()))
    with pytest.raises(InvalidPayload, match="refusing to call back"):
        await hooks(message({**SUCCESS, "callback_url": url}))
    assert seen == []
    await hooks.aclose()


async def test_tasks_without_a_callback_are_left_alone():
    hooks = WebhookProcessor(AddressPolicy.parse(()))
    assert await hooks(message(SUCCESS)) == []
