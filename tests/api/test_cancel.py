"""``POST /v1/tasks/{request_id}/cancel`` on a real redis-server with a real stage, over HTTP.

The app runs under uvicorn in a thread (tests/support/api_server.py); the stage's
runner runs in the test's loop. A held task's handler waits on ``gate``, which no
test opens: only a cancel ends it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from streams.api.settings import ApiSettings
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis.keys import Keys
from streams.settings import Settings
from streams.stage import Stage
from tests.api.test_events import _collect
from tests.support.api_server import serving
from tests.support.pipelines import running, wait_for

READ, ADMIN = "read-token-for-tests", "admin-token-for-tests"
started: list[str] = []


async def _work(message: Message) -> list[Outgoing]:
    started.append(message.request_id)
    if message.payload.get("hold"):
        await asyncio.Event().wait()  # until cancelled
    return [Outgoing(message.payload)]


@pytest.fixture
def api_settings(settings: Settings, keys: Keys) -> Settings:
    return dataclasses.replace(settings, namespace=keys.namespace, operator="oncall-jo")


@pytest.fixture
def pipeline(pipeline_name: str) -> Pipeline:
    return Pipeline(pipeline_name, [Stage("work", "in", _work, sinks=["out"], concurrency=2)])


@pytest.fixture
def url(pipeline: Pipeline, api_settings: Settings) -> Iterator[str]:
    api = ApiSettings(api_read_tokens=(READ,), api_admin_tokens=(ADMIN,), api_sse_heartbeat=0.3)
    with serving(pipeline, api_settings, api) as base:
        yield base


@pytest.fixture
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=10, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        yield http


def _keys(pipeline: Pipeline, api_settings: Settings) -> Keys:
    return Keys(api_settings.namespace, pipeline.name)


async def _state(client: httpx.AsyncClient, rid: str) -> Any:
    found = await client.get(f"/v1/tasks/{rid}")
    return found.json()["state"] if found.status_code == 200 else None


async def test_cancelling_a_running_task_ends_it_cancelled_with_a_job_failed_event(
        client: httpx.AsyncClient, redis: Redis, pipeline: Pipeline, api_settings: Settings) -> None:
    keys = _keys(pipeline, api_settings)
    assert (await client.post("/v1/tasks", json={"request_id": "held", "hold": True})).status_code == 202
    async with running(redis, keys, pipeline.stages[0], api_settings):
        async def entered() -> bool:
            return "held" in started
        await wait_for(entered)

        connected = asyncio.Event()
        listen = asyncio.create_task(_collect(client, "/v1/tasks/held/events", 2, {"task", "job-failed"},
                                              started=connected))
        await asyncio.wait_for(connected.wait(), 10)  # its first event came: it follows the stream from here
        answer = await client.post("/v1/tasks/held/cancel", json={"reason": "ordered twice"})
        found = await asyncio.wait_for(listen, 10)

    assert answer.status_code == 200
    body = answer.json()
    assert body == {"request_id": "held", "cancelled": True, "by": "api:oncall-jo", "at": body["at"]}
    assert [name for _, name, _ in found] == ["task", "job-failed"]
    assert found[1][2] | {"at": 0, "entry": ""} == {"jobId": "held", "stage": "work", "state": "cancelled",
                                                    "result": "cancelled", "at": 0, "entry": ""}
    task = (await client.get("/v1/tasks/held")).json()
    assert (task["state"], task["final"], task["result"]) == ("cancelled", True, "cancelled")
    assert task["last_error"] == "cancelled by api:oncall-jo: ordered twice"
    records = [orjson.loads(f[b"d"]) for _, f in await redis.xrange(keys.errors)]
    assert [(r["request_id"], r["error_message"]) for r in records] == [
        ("held", "cancelled by api:oncall-jo: ordered twice")]
    assert await redis.xlen(keys.stream("out")) == 0


async def test_a_task_cancelled_before_it_is_published_is_skipped_when_it_arrives(
        client: httpx.AsyncClient, redis: Redis, pipeline: Pipeline, api_settings: Settings) -> None:
    answer = await client.post("/v1/tasks/early/cancel")  # no body: no reason
    assert answer.status_code == 200 and answer.json()["cancelled"] is True
    assert (await client.post("/v1/tasks", json=[{"request_id": "early"}, {"request_id": "other"}])).status_code == 202
    async with running(redis, _keys(pipeline, api_settings), pipeline.stages[0], api_settings):
        async def both_ended() -> bool:
            return (await _state(client, "early"), await _state(client, "other")) == ("cancelled", "forwarded")
        await wait_for(both_ended)
    assert "early" not in started
    assert (await client.get("/v1/tasks/early")).json()["last_error"] == "cancelled by api:oncall-jo: no reason given"


async def test_cancelling_needs_the_admin_scope_and_a_short_reason(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as anonymous:
        assert (await anonymous.post("/v1/tasks/r1/cancel")).status_code == 401
        reader = {"Authorization": f"Bearer {READ}"}
        assert (await anonymous.post("/v1/tasks/r1/cancel", headers=reader)).status_code == 403
        admin = {"Authorization": f"Bearer {ADMIN}"}
        too_long = await anonymous.post("/v1/tasks/r1/cancel", headers=admin, json={"reason": "x" * 501})
        assert too_long.status_code == 422
        assert (await anonymous.post("/v1/tasks/r1/cancel", headers=admin, json={})).status_code == 200
