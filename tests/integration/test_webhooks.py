"""The results stage's webhooks against a local receiver, and end to end on a real Redis."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from redis.asyncio import Redis

from processors.egress.policy import AddressPolicy
from processors.pipeline import NAME, TASK_STAGES, build
from processors.stages.results import WebhookProcessor, WebhookRejected, WebhookUnavailable
from streams.errors import InvalidPayload
from streams.message import Message
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.support.pipelines import payloads, running, wait_for

SUCCESS = {"request_id": "r1", "image_id": "i1", "image_url": "http://h/i1.png"}
LOOPBACK = AddressPolicy.parse(("127.0.0.1",))


@dataclass
class Receiver:
    url: str = ""
    seen: list[dict] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    refuse_status: dict[str, int] = field(default_factory=dict)  # body "status" -> HTTP status


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        state.seen.append(body)
        status = state.answers.pop(0) if state.answers else state.refuse_status.get(body.get("status"), 200)
        return web.Response(status=status)

    async def moved(request: web.Request) -> web.Response:
        state.seen.append(await request.json())
        return web.Response(status=302, headers={"Location": "http://169.254.169.254/"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield state
    await runner.cleanup()


@pytest.fixture
async def hooks() -> AsyncIterator[WebhookProcessor]:
    processor = WebhookProcessor(LOOPBACK, task_stages=TASK_STAGES, secrets=("sk-live-0123456789",))
    yield processor
    await processor.aclose()


def message(payload: dict) -> Message:
    return Message("1-0", "success", payload, "r1")


def error_record(url: str, stage: str = "ocr", text: str = "image URL returned 404") -> dict:
    return {"request_id": "r1", "error_message": text, "timestamp": 1700000000, "stage": stage,
            "payload": {"request_id": "r1", "image_id": "i1", "callback_url": url}}


async def test_success_is_posted_to_the_callback(receiver: Receiver, hooks: WebhookProcessor):
    assert await hooks(message({**SUCCESS, "callback_url": receiver.url})) == []
    assert receiver.seen == [{"status": "success", **SUCCESS}]


async def test_error_records_of_task_stages_are_posted_with_the_task_ids(receiver, hooks):
    await hooks(message(error_record(receiver.url)))
    assert receiver.seen == [{"status": "error", "request_id": "r1", "image_id": "i1",
                              "error_message": "image URL returned 404", "timestamp": 1700000000}]


@pytest.mark.parametrize("stage", ["results", "results-errors", "legacy-success", "legacy-error", "other"])
async def test_error_records_of_webhook_and_mirror_stages_are_never_posted(receiver, hooks, stage: str):
    assert await hooks(message(error_record(receiver.url, stage, "callback answered 422"))) == []
    assert receiver.seen == []


async def test_the_error_message_in_a_webhook_body_is_redacted(receiver, hooks):
    text = "http://u:pw@llm/v1 said sk-live-0123456789; Authorization: Bearer abcdef"
    await hooks(message(error_record(receiver.url, text=text)))
    assert receiver.seen[0]["error_message"] == "http://u:***@llm/v1 said ***; Authorization: ***"


async def test_5xx_is_retryable_and_4xx_is_permanent(receiver, hooks):
    receiver.answers.extend([503, 404])
    with pytest.raises(WebhookUnavailable, match="answered 503; will retry"):
        await hooks(message({**SUCCESS, "callback_url": receiver.url}))
    with pytest.raises(WebhookRejected, match="answered 404; check callback_url"):
        await hooks(message({**SUCCESS, "callback_url": receiver.url}))


async def test_a_redirect_is_not_followed(receiver, hooks):
    moved = receiver.url.replace("/hook", "/moved")
    with pytest.raises(WebhookRejected) as caught:
        await hooks(message({**SUCCESS, "callback_url": moved}))
    assert str(caught.value) == (f"callback to {moved} answered 302; redirects are not followed: "
                                 "give the final URL in callback_url")
    assert len(receiver.seen) == 1


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("127.0.0.1", "its address is loopback (RFC 1122)"),
        ("127\u30020\u30020\u30021", "its address is loopback (RFC 1122)"),  # ideographic full stops
        ("\uff11\uff12\uff17.0.0.1", "its address is loopback (RFC 1122)"),  # full-width digits
        ("169\uff0e254\uff0e169\uff0e254", "its address is a cloud metadata address"),  # full-width stops
        ("127.1", "its host '127.1' is a rare IP address format (RFC 3986 section 7.4); write the address "
                  "as four decimal numbers (a.b.c.d) or use a name"),
        ("[::ffff:0:7f00:1]", "its address is loopback (RFC 1122) inside IPv4-translated (RFC 2765)"),
    ],
)
async def test_callbacks_to_internal_hosts_are_refused_in_every_spelling(receiver, host: str, problem: str):
    port = receiver.url.split(":")[2].split("/")[0]
    hooks = WebhookProcessor(AddressPolicy(), task_stages=TASK_STAGES)
    url = f"http://user:pw@{host}:{port}/hook"
    with pytest.raises(InvalidPayload) as caught:
        await hooks(message({**SUCCESS, "callback_url": url}))
    assert str(caught.value) == (f"refusing to call back http://{host}:{port}/hook: {problem}; check "
                                 "callback_url (MILLSTREAM_FETCH_ALLOW_HOSTS opens hosts and networks)")
    assert receiver.seen == []
    await hooks.aclose()


async def test_tasks_without_a_callback_are_left_alone(hooks):
    assert await hooks(message(SUCCESS)) == []


async def test_a_callback_url_that_is_not_a_string_is_an_invalid_payload(hooks):
    with pytest.raises(InvalidPayload, match="callback_url must be a string, not dict"):
        await hooks(message({**SUCCESS, "callback_url": {"url": "http://x"}}))


async def delivered(redis: Redis, keys: Keys, group: str) -> bool:
    """Whether ``group`` has read every entry of the errors stream and holds none pending."""
    last = await redis.xrevrange(keys.errors, count=1)
    infos = {info["name"].decode(): info for info in await redis.xinfo_groups(keys.errors)}
    info = infos.get(group)
    return bool(last and info and info["pending"] == 0 and info["last-delivered-id"] == last[0][0])


async def test_a_refused_success_webhook_is_never_posted_again_as_an_error(
    redis: Redis, settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    """The pipeline's own results and results-errors stages, on a real Redis, with a receiver refusing success."""
    receiver.refuse_status["success"] = 422
    monkeypatch.setenv("MILLSTREAM_FETCH_ALLOW_HOSTS", "127.0.0.1")
    settings = dataclasses.replace(settings, namespace=f"t{uuid.uuid4().hex[:10]}")
    pipeline = build(settings)
    keys, stages = Keys(settings.namespace, NAME), {stage.name: stage for stage in pipeline.stages}
    publisher = Publisher(redis, keys)
    # A group that reads nothing keeps the error records from being trimmed, so the test can read them.
    await redis.xgroup_create(keys.errors, "observer", id="0", mkstream=True)
    await publisher.publish("success", {**SUCCESS, "callback_url": receiver.url}, "r1")
    try:
        async with running(redis, keys, stages["results"], settings), \
                running(redis, keys, stages["results-errors"], settings):
            await wait_for(lambda: delivered(redis, keys, "results-errors"))
            # A genuine task error afterwards: the error webhook is alive and posts it.
            task_error = {**error_record(receiver.url), "request_id": "r2"}
            task_error["payload"] = {"request_id": "r2", "image_id": "i2", "callback_url": receiver.url}
            await publisher.publish("errors", task_error, "r2")
            await wait_for(lambda: delivered(redis, keys, "results-errors"))
    finally:
        for close in pipeline.on_stop:
            await close()
    records = await payloads(redis, keys.errors)
    assert [(r["stage"], r["request_id"]) for r in records] == [("results", "r1"), ("ocr", "r2")]
    assert "answered 422; check callback_url" in records[0]["error_message"]
    assert [(body["status"], body["request_id"]) for body in receiver.seen] == [("success", "r1"), ("error", "r2")]
