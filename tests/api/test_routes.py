"""The HTTP API on a real redis-server with real stages: ingest, tasks, stats, running, pause, DLQ.

The app runs under uvicorn in a thread (tests/support/api_server.py) and is called over HTTP.
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
from streams.errors import PermanentError, RetryableError
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis import control
from streams.redis.keys import Keys
from streams.settings import Settings
from streams.stage import Stage
from tests.support.api_server import serving
from tests.support.pipelines import running, wait_for

gate = asyncio.Event()


async def _work(message: Message) -> list[Outgoing]:
    payload = message.payload
    if payload.get("fail") == "permanent":
        raise PermanentError("this task cannot be done")
    if payload.get("fail") == "retry":
        raise RetryableError("try later")
    if payload.get("hold"):
        await gate.wait()
    return [Outgoing({**payload, "worked": True})]


async def _finish(message: Message) -> list[Outgoing]:
    return []


def _pipeline(name: str) -> Pipeline:
    def validate(task: Any) -> list[tuple[str, str]]:
        return [("n", "n must be a number")] if "n" in task and not isinstance(task["n"], int) else []

    # A short deadline: leases of held entries are renewed after 1 s (deadline / 2).
    stages = [Stage("work", "in", _work, sinks=["out"], max_attempts=1, concurrency=4, deadline=2.0),
              Stage("finish", "out", _finish)]
    return Pipeline(name, stages, validators={"in": validate})


@pytest.fixture
def api_settings(settings: Settings, keys: Keys) -> Settings:
    return dataclasses.replace(settings, namespace=keys.namespace)


@pytest.fixture
def pipeline(pipeline_name: str) -> Pipeline:
    return _pipeline(pipeline_name)


@pytest.fixture
def url(pipeline: Pipeline, api_settings: Settings) -> Iterator[str]:
    with serving(pipeline, api_settings, ApiSettings(api_max_body_bytes=64 * 1024, api_max_batch=50)) as base:
        yield base


@pytest.fixture
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield http


@pytest.fixture
async def stages(redis: Redis, pipeline: Pipeline, api_settings: Settings) -> AsyncIterator[None]:
    keys = Keys(api_settings.namespace, pipeline.name)
    async with running(redis, keys, pipeline.stages[0], api_settings), \
            running(redis, keys, pipeline.stages[1], api_settings):
        yield


async def _task(client: httpx.AsyncClient, rid: str, state: str) -> dict[str, Any] | None:
    found = await client.get(f"/v1/tasks/{rid}")
    return found.json() if found.status_code == 200 and found.json()["state"] == state else None


async def test_a_published_task_is_accepted_at_once_and_idempotent_by_request_id(client: httpx.AsyncClient,
                                                                                 redis: Redis, keys: Keys,
                                                                                 pipeline: Pipeline) -> None:
    first = await client.post("/v1/tasks", json={"request_id": "r1", "n": 1})
    again = await client.post("/v1/tasks", json={"request_id": "r1", "n": 2})
    assert first.status_code == again.status_code == 202
    assert first.json()["tasks"] == again.json()["tasks"]
    assert first.json()["stream"] == "in"
    assert await redis.xlen(Keys(keys.namespace, pipeline.name).stream("in")) == 1
    task = (await client.get("/v1/tasks/r1")).json()
    assert task["state"] == "queued" and task["final"] is False
    assert [step["state"] for step in task["history"]] == ["queued"]


async def test_a_batch_is_published_whole_with_generated_ids_where_none_is_given(
        client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/tasks", json=[{"request_id": "b1"}, {"n": 3}, {"n": 4}])
    assert answer.status_code == 202
    published = answer.json()["tasks"]
    assert published[0]["request_id"] == "b1"
    assert len({t["request_id"] for t in published}) == 3
    assert all(len(t["request_id"]) == 32 for t in published[1:])


@pytest.mark.parametrize(("body", "loc"), [
    (b"{not json", ["body"]),
    (b"[]", ["body"]),
    (b"[1]", ["body", 0]),
    (b'"a string"', ["body"]),
    (b'{"n": "x"}', ["body", "n"]),
    (b'[{"n": 1}, {"n": "x"}]', ["body", 1, "n"]),
    (b'{"request_id": 7}', ["body", "request_id"]),
    (b'{"request_id": "a\\u0000b"}', ["body", "request_id"]),
    (b'{"request_id": ""}', ["body", "request_id"]),
    (orjson.dumps([{"n": i} for i in range(51)]), ["body"]),
])
async def test_an_invalid_body_is_422_naming_the_field_and_publishes_nothing(
        client: httpx.AsyncClient, redis: Redis, keys: Keys, pipeline: Pipeline, body: bytes,
        loc: list[Any]) -> None:
    answer = await client.post("/v1/tasks", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert loc in [problem["loc"] for problem in answer.json()["detail"]]
    assert await redis.xlen(Keys(keys.namespace, pipeline.name).stream("in")) == 0


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(client: httpx.AsyncClient) -> None:
    big = b'{"x": "' + b"a" * 70_000 + b'"}'
    declared = await client.post("/v1/tasks", content=big, headers={"Content-Type": "application/json"})

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    streamed = await client.post("/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"})
    assert declared.status_code == streamed.status_code == 413
    assert "MILLSTREAM_API_MAX_BODY_BYTES" in streamed.json()["detail"]


async def test_an_unknown_stream_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/tasks?stream=nowhere", json={"n": 1})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "stream"]
    assert (await client.post("/v1/tasks?stream=out", json={"n": 1})).status_code == 202


@pytest.mark.usefixtures("stages")
async def test_a_task_shows_every_transition_and_its_end(client: httpx.AsyncClient) -> None:
    await client.post("/v1/tasks", json={"request_id": "h1", "n": 1})
    task = await wait_for(lambda: _task(client, "h1", "done"))
    assert [(s["stage"], s["state"]) for s in task["history"]] == [
        ("publish", "queued"), ("work", "forwarded"), ("finish", "done")]
    times = [s["at"] for s in task["history"]]
    assert times == sorted(times)
    assert task["final"] is True and task["attempts"] == 1 and task["last_error"] is None


@pytest.mark.usefixtures("stages")
async def test_a_failed_task_shows_its_error(client: httpx.AsyncClient) -> None:
    await client.post("/v1/tasks", json={"request_id": "f1", "fail": "permanent"})
    task = await wait_for(lambda: _task(client, "f1", "failed"))
    assert "cannot be done" in task["last_error"]
    assert task["final"] is True


@pytest.mark.usefixtures("stages")
async def test_dead_letters_are_listed_shown_and_replayed_once(client: httpx.AsyncClient) -> None:
    await client.post("/v1/tasks", json={"request_id": "d1", "fail": "retry"})
    page = await wait_for(lambda: _letters(client))
    letter = page["letters"][0]
    assert letter["request_id"] == "d1" and letter["stage"] == "work"
    shown = (await client.get(f"/v1/dlq/work/{letter['id']}")).json()
    assert shown["payload"] == {"request_id": "d1", "fail": "retry"}
    dry = (await client.post("/v1/dlq/replay", json={"stage": "work", "dry_run": True})).json()
    assert dry == {**dry, "matched": 1, "done": 1, "dry_run": True}
    assert (await client.get("/v1/dlq")).json()["total"] == 1
    edit = {"stage": "work", "patch": {"fail": None, "fixed": True}}
    replays = await asyncio.gather(*[client.post("/v1/dlq/replay", json=edit) for _ in range(3)])
    assert sum(r.json()["done"] for r in replays) == 1  # idempotent: one letter moves once
    task = await wait_for(lambda: _task(client, "d1", "done"))
    assert "replayed" in [s["state"] for s in task["history"]]
    audit = (await client.get("/v1/dlq/audit")).json()
    assert any('"replay"' in entry.get("detail", "") for entry in audit)


@pytest.mark.usefixtures("stages")
async def test_a_dead_letter_is_edited_by_merge_patch_then_replayed_by_id(client: httpx.AsyncClient) -> None:
    await client.post("/v1/tasks", json=[{"request_id": "e1", "fail": "retry"}, {"request_id": "e2", "fail": "retry"}])
    page = await wait_for(lambda: _letters(client, 2))
    first = next(letter for letter in page["letters"] if letter["request_id"] == "e1")
    edited = await client.patch(f"/v1/dlq/work/{first['id']}", json={"fail": None, "note": "fixed"},
                                headers={"Content-Type": "application/merge-patch+json"})
    assert edited.status_code == 200, edited.text
    letter = edited.json()
    assert letter["payload"] == {"request_id": "e1", "note": "fixed"} and letter["id"] != first["id"]
    assert (await client.get(f"/v1/dlq/work/{first['id']}")).status_code == 404  # filed again under a new id
    refused = await client.patch(f"/v1/dlq/work/{letter['id']}", json=[1, 2])
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body"]
    replayed = (await client.post("/v1/dlq/replay", json={"ids": [letter["id"]]})).json()
    assert replayed["done"] == 1  # only that one: e2 stays dead
    await wait_for(lambda: _task(client, "e1", "done"))
    remaining = (await client.get("/v1/dlq")).json()
    assert [x["request_id"] for x in remaining["letters"]] == ["e2"]
    actions = [entry["action"] for entry in (await client.get("/v1/dlq/audit")).json()]
    assert actions[:2] == ["replay", "edit"]


async def _letters(client: httpx.AsyncClient, n: int = 1) -> dict[str, Any] | None:
    page = (await client.get("/v1/dlq", params={"stage": "work"})).json()
    return page if len(page["letters"]) >= n else None


async def test_dlq_routes_refuse_bad_filters_and_unknown_letters(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/dlq", params={"reason": "("})).status_code == 422
    assert (await client.get("/v1/dlq/work/1-0")).status_code == 404
    assert (await client.get("/v1/dlq/nostage/1-0")).status_code == 404
    assert (await client.post("/v1/dlq/replay", json={"to_stage": "nostage"})).status_code == 422


@pytest.mark.usefixtures("stages")
async def test_running_shows_held_tasks_with_consumer_and_elapsed_time(client: httpx.AsyncClient) -> None:
    gate.clear()
    await client.post("/v1/tasks", json=[{"request_id": "run1", "hold": True}, {"request_id": "run2", "hold": True}])
    try:
        found = await wait_for(lambda: _running(client, 2))
        assert {r["request_id"] for r in found["running"]} == {"run1", "run2"}
        assert all(r["stage"] == "work" and r["consumer"] and r["elapsed_seconds"] >= 0 for r in found["running"])
        assert found["summary"]["running"] == 2
        started = {r["request_id"]: r["started_at"] for r in found["running"]}
        later = await wait_for(lambda: _running_for(client, 1.6), timeout=15)
        # A lease renewal (after 1 s) resets the entry's idle time in Redis, not when it was read.
        assert {r["request_id"]: r["started_at"] for r in later["running"]} == pytest.approx(started, abs=0.05)
    finally:
        gate.set()


async def _running_for(client: httpx.AsyncClient, seconds: float) -> dict[str, Any] | None:
    found = (await client.get("/v1/running")).json()
    return found if found["running"] and min(r["elapsed_seconds"] for r in found["running"]) > seconds else None


async def _running(client: httpx.AsyncClient, n: int) -> dict[str, Any] | None:
    found = (await client.get("/v1/running")).json()
    return found if len(found["running"]) == n else None


@pytest.mark.usefixtures("stages")
async def test_stats_count_completed_and_failed_per_stage(client: httpx.AsyncClient) -> None:
    await client.post("/v1/tasks", json=[{"n": i} for i in range(5)] + [{"fail": "permanent"}])

    async def settled() -> dict[str, Any] | None:
        figures = {s["stage"]: s for s in (await client.get("/v1/stats")).json()["stages"]}
        return figures if figures["finish"]["completed"] == 5 else None

    figures = await wait_for(settled)
    assert figures["work"]["completed"] == 5 and figures["work"]["failed"] == 1
    assert figures["work"]["waiting"] == 0 and figures["work"]["paused"] is False


async def test_pause_and_resume_are_persisted_and_listed(client: httpx.AsyncClient, redis: Redis, keys: Keys,
                                                         pipeline: Pipeline) -> None:
    paused = (await client.post("/v1/stages/work/pause")).json()
    assert paused["paused"] is True and paused["by"].startswith("api:")
    assert "work" in await control.paused(redis, Keys(keys.namespace, pipeline.name))
    info = (await client.get("/v1/pipeline")).json()
    assert {s["name"]: s["paused"] for s in info["stages"]} == {"work": True, "finish": False}
    assert (await client.post("/v1/stages/work/resume")).json()["paused"] is False
    assert await control.paused(redis, Keys(keys.namespace, pipeline.name)) == {}
    assert (await client.post("/v1/stages/nostage/pause")).status_code == 404


async def test_listing_pages_through_waiting_tasks_with_a_cursor(client: httpx.AsyncClient) -> None:
    await client.post("/v1/tasks", json=[{"request_id": f"p{i}"} for i in range(25)])
    seen, cursor = [], None
    while True:
        params = {"stage": "work", "state": "waiting", "limit": 10} | ({"page": cursor} if cursor else {})
        page = (await client.get("/v1/tasks", params=params)).json()
        seen += [t["request_id"] for t in page["tasks"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"p{i}" for i in range(25)]
    queued = (await client.get("/v1/tasks", params={"state": "queued", "limit": 500})).json()
    assert {t["request_id"] for t in queued["tasks"]} == set(seen)
    bad = await client.get("/v1/tasks", params={"state": "waiting", "stage": "work", "page": "nonsense"})
    assert bad.status_code == 422
    assert (await client.get("/v1/tasks", params={"stage": "nostage"})).status_code == 404


async def test_an_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/tasks/nobody")
    assert answer.status_code == 404 and "nobody" in answer.json()["detail"]


async def test_redis_down_is_503_not_a_traceback(pipeline: Pipeline) -> None:
    from streams.redis.server import free_port

    down = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", metrics_port=0)
    with serving(pipeline, down) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            answers = [await http.get("/v1/stats"), await http.post("/v1/tasks", json={"n": 1}),
                       await http.get("/readyz")]
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert "Redis unavailable" in answers[0].json()["detail"]


async def test_the_image_pipeline_takes_the_seed_task_json_and_names_a_bad_field(
        pipeline_name: str, api_settings: Settings) -> None:
    from processors.stages.task import problems

    image = Pipeline(pipeline_name + "i", [Stage("ocr", "tasks", _finish)], validators={"tasks": problems})
    good = {"request_id": "s1", "image_url": "https://shop.example/a.png", "image_id": "a", "is_long": False}
    with serving(image, api_settings) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            accepted = await http.post("/v1/tasks", json=good)
            refused = await http.post("/v1/tasks", json=[good, {**good, "is_long": "no", "image_url": None}])
    assert accepted.status_code == 202 and accepted.json()["tasks"][0]["request_id"] == "s1"
    assert refused.status_code == 422
    assert sorted(p["loc"] for p in refused.json()["detail"]) == [["body", 1, "image_url"], ["body", 1, "is_long"]]
    assert "must be a boolean" in " ".join(p["msg"] for p in refused.json()["detail"])
