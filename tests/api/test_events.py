"""Live events over SSE on a real redis-server: names, resume with Last-Event-ID, slow clients, one task."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from streams.api.events import Event as ApiEvent
from streams.api.events import Hub, Overflow, translate
from streams.api.settings import ApiSettings
from streams.errors import PermanentError
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis.keys import Keys
from streams.settings import Settings
from streams.stage import Stage
from tests.support.api_server import serving
from tests.support.pipelines import running, wait_for

Event = tuple[str | None, str, dict[str, Any]]


async def _work(message: Message) -> list[Outgoing]:
    if message.payload.get("fail"):
        raise PermanentError("no")
    return []


@pytest.fixture
def api_settings(settings: Settings, keys: Keys) -> Settings:
    return dataclasses.replace(settings, namespace=keys.namespace)


@pytest.fixture
def pipeline(pipeline_name: str) -> Pipeline:
    return Pipeline(pipeline_name, [Stage("work", "in", _work)])


@pytest.fixture
def url(pipeline: Pipeline, api_settings: Settings) -> Iterator[str]:
    api = ApiSettings(api_sse_heartbeat=0.3, api_sse_queue=200, api_stats_interval=0.5)
    with serving(pipeline, api_settings, api) as base:
        yield base


@pytest.fixture
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield http


async def _events(response: httpx.Response) -> AsyncIterator[Event | str]:
    """Parsed SSE events (id, name, data) and comments (as text) of a streaming response."""
    event_id, name, data = None, "message", b""
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield line
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:].encode()
        elif line == "":
            if data:
                yield (event_id, name, orjson.loads(data))
            event_id, name, data = None, "message", b""


async def _collect(client: httpx.AsyncClient, path: str, until: int, names: set[str],
                   headers: dict[str, str] | None = None, started: asyncio.Event | None = None,
                   found: list[Event] | None = None) -> list[Event]:
    found = [] if found is None else found
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        async for event in _events(response):
            if started:
                started.set()
            if isinstance(event, tuple) and event[1] in names:
                found.append(event)
                if len(found) >= until:
                    break
    return found


async def _publish(client: httpx.AsyncClient, tasks: list[dict[str, Any]]) -> None:
    assert (await client.post("/v1/tasks", json=tasks)).status_code == 202


async def test_events_carry_the_seed_names_with_stats_heartbeats_and_pauses(client: httpx.AsyncClient) -> None:
    started = asyncio.Event()
    names = {"job-progress", "queue-stats", "stage-paused", "stage-resumed"}
    listen = asyncio.create_task(_collect(client, "/v1/events", 5, names, started=started))
    await started.wait()  # the first queue-stats arrived: subscribed
    await _publish(client, [{"request_id": "e1"}, {"request_id": "e2"}])
    await client.post("/v1/stages/work/pause")
    await client.post("/v1/stages/work/resume")
    found = await asyncio.wait_for(listen, 10)
    by_name = {name: [data for _, n, data in found if n == name] for name in names}
    assert by_name["queue-stats"][0]["stages"][0]["stage"] == "work"
    progress = [e for e in found if e[1] == "job-progress"]
    assert {data["jobId"] for _, _, data in progress} <= {"e1", "e2"}
    assert all(event_id for event_id, _, _ in progress)


async def test_a_comment_heartbeat_keeps_an_idle_stream_alive(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/v1/tasks/nobody/events") as response:
        async for event in _events(response):
            assert event == ": heartbeat"
            break


async def test_a_client_resumes_after_last_event_id_without_gaps_or_repeats(client: httpx.AsyncClient,
                                                                           redis: Redis) -> None:
    await _publish(client, [{"request_id": f"r{i}"} for i in range(3)])
    await _publish(client, [{"request_id": f"s{i}"} for i in range(3)])
    # Everything from the start of the stream: "0-0" resumes before the first entry.
    first = await _collect(client, "/v1/events", 6, {"job-progress"}, headers={"Last-Event-ID": "0-0"})
    assert [d["jobId"] for _, _, d in first] == ["r0", "r1", "r2", "s0", "s1", "s2"]
    resumed_at = first[1][0]  # inside the first entry: the rest of it, then the next
    assert resumed_at and resumed_at.endswith(".1")
    rest = await _collect(client, "/v1/events", 4, {"job-progress"}, headers={"Last-Event-ID": resumed_at})
    assert [d["jobId"] for _, _, d in rest] == ["r2", "s0", "s1", "s2"]


async def test_a_client_that_stops_reading_costs_the_others_nothing(client: httpx.AsyncClient,
                                                                   url: str) -> None:
    total = 2000
    async with httpx.AsyncClient(base_url=url, timeout=30) as silent_client, \
            silent_client.stream("GET", "/v1/events") as silent:
        await anext(silent.aiter_lines())  # connected, then it reads nothing while the events go by
        got: list[Event] = []
        fast = asyncio.create_task(_collect(client, "/v1/events", total, {"job-progress"}, found=got))
        await asyncio.sleep(0.3)
        for start in range(0, total, 100):  # bursts of 100 fit the ring of 200; the fast client keeps up
            await _publish(client, [{"request_id": f"x{i}", "pad": "p" * 40} for i in range(start, start + 100)])
            await wait_for(lambda n=start + 100: _at_least(got, n))
        await asyncio.wait_for(fast, 30)
        assert [d["jobId"] for _, _, d in got] == [f"x{i}" for i in range(total)]


async def _at_least(found: list[Event], n: int) -> bool:
    return len(found) >= n


async def test_the_hub_drops_a_client_behind_its_ring_and_keeps_nothing_per_client() -> None:
    hub = Hub(None, "events", size=5)  # type: ignore[arg-type]  # never tails: events are handed to it
    hub.clients = 1
    behind, current = 0, 0
    hub.publish([ApiEvent(f"1-{n}.0", "job-progress", {"n": n}) for n in range(3)])
    assert [e.data["n"] for e in hub.since(current)] == [0, 1, 2]
    current = 3
    hub.publish([ApiEvent(f"2-{n}.0", "job-progress", {"n": n}) for n in range(3, 7)])
    assert [e.data["n"] for e in hub.since(current)] == [3, 4, 5, 6]
    with pytest.raises(Overflow):
        hub.since(behind)  # event 0 and 1 left the ring of 5
    assert len(hub.ring) == 5 and await hub.wait(current, 0.01)
    assert not await hub.wait(7, 0.01)


async def test_one_tasks_events_start_with_its_state_and_end_with_its_end(
        client: httpx.AsyncClient, redis: Redis, pipeline: Pipeline, api_settings: Settings) -> None:
    await _publish(client, [{"request_id": "t1", "fail": True}])
    listen = asyncio.create_task(_collect(client, "/v1/tasks/t1/events", 10, {"task", "job-progress",
                                                                            "job-failed"}))
    await asyncio.sleep(0.3)
    keys = Keys(api_settings.namespace, pipeline.name)
    async with running(redis, keys, pipeline.stages[0], api_settings):
        found = await asyncio.wait_for(listen, 10)  # the stream ends by itself after job-failed
    assert [name for _, name, _ in found] == ["task", "job-failed"]
    assert found[0][2]["state"] == "queued" and found[1][2]["jobId"] == "t1"
    ended = await _collect(client, "/v1/tasks/t1/events", 10, {"task"})  # final: one event, then the end
    assert [data["state"] for _, _, data in ended] == ["failed"]


@pytest.mark.parametrize("fields", [
    {b"t": b"not json"}, {b"t": b"{}"}, {b"t": b"[[1]]"}, {b"stage": b"\xff", b"t": b'[["a","done","1-0"]]'}, {},
])
def test_malformed_events_entries_yield_nothing_or_text(fields: dict[bytes, bytes]) -> None:
    events = list(translate("1-0", fields))
    assert all(isinstance(orjson.dumps(e.data), bytes) for e in events)
    assert len(events) <= 1
