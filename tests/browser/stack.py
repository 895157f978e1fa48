"""A small real pipeline on a real Redis, its workers and its API, running in a thread of their own.

The browser tests drive Playwright's sync API from the test thread, so the
asyncio parts (stage runners, uvicorn) run on a loop in another thread;
``Stack.call`` runs a coroutine there and waits for its result.

The pipeline ``ingest`` (tasks → work) → ``work`` (work → results), and
``archive`` (backlog), which no worker runs, so that its backlog is lag:

Both give up after one attempt, so a failing task is dead-lettered at once:

* ``{"poison": true, "note": ...}`` is dead-lettered by ``ingest`` (the note in the reason);
* ``{"fragile": true}`` is dead-lettered by ``work`` while ``faults.fragile`` is on
  (an operator "fixes the bug", then replays);
* ``{"hold": true}`` stays running in ``work`` until the stack stops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from prometheus_client import CollectorRegistry

from streams.api.app import create_app
from streams.api.settings import ApiSettings
from streams.engine.runner import StageRunner, stage_runners
from streams.errors import RetryableError
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.pipeline import Pipeline
from streams.redis import library
from streams.redis.connection import connect
from streams.redis.consumer import GroupConsumer
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.transport import RedisTransport
from streams.settings import Settings
from streams.stage import Stage
from tests.support.pipelines import wait_for
from tests.support.redis_server import free_port

T = TypeVar("T")
NAMESPACE = "mst"
BACKLOG = 7
READ_TOKEN = "read-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"
HOSTILE_NOTE = "<img src=x onerror=window.__pwned=1>\u202eevil\u202c <script>window.__pwned=2</script>"
BIG = "y" * 100_000


@dataclass
class Faults:
    """Switches the tests flip: whether ``work`` still breaks fragile tasks, and the held task's release."""

    fragile: bool = True
    released: asyncio.Event = field(default_factory=asyncio.Event)


def build(name: str, faults: Faults) -> Pipeline:
    async def ingest(message: Message) -> list[Outgoing]:
        payload = message.payload
        if payload.get("poison"):
            raise RetryableError(f"poisoned: {str(payload.get('note', 'no note'))[:300]}")
        return [Outgoing(dict(payload))]

    async def work(message: Message) -> list[Outgoing]:
        payload = message.payload
        if payload.get("hold"):
            await faults.released.wait()
        if payload.get("fragile") and faults.fragile:
            raise RetryableError("fragile: the model was down")
        rid = message.request_id or "x"
        return [Outgoing({"request_id": rid, "image_id": f"img-{rid}",
                          "image_url": f"https://images.example/{rid}.png"})]

    async def archive(message: Message) -> list[Outgoing]:
        return []

    return Pipeline(name, [
        Stage("ingest", "tasks", ingest, sinks=["work"], concurrency=4, max_attempts=1),
        Stage("work", "work", work, sinks=["results"], concurrency=4, max_attempts=1),
        Stage("archive", "backlog", archive),
    ], results=["results"])


class Stack:
    """The pipeline's workers (ingest and work) and one API server per ``ApiSettings`` given."""

    def __init__(self, redis_url: str, name: str) -> None:
        self.settings = Settings(redis_url=redis_url, namespace=NAMESPACE, consumer="c-browser", metrics_port=0, heartbeat_ttl=1.0,
                                 claim_interval=0.2, trim_interval=0.5, stats_interval=0.5)
        self.keys = Keys(NAMESPACE, name)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="browser-stack", daemon=True)
        self._thread.start()
        self.faults: Faults = self.call(self._faults())
        self.pipeline = build(name, self.faults)
        self.redis = self.call(self._connect())
        self._runners: list[StageRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._servers: list[uvicorn.Server] = []

    async def _faults(self) -> Faults:
        return Faults()  # its Event belongs to the stack's loop

    async def _connect(self) -> Any:
        client = connect(self.settings)
        await library.load(client)
        return client

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coroutine`` on the stack's loop; its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def soon(self, fn: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def start_workers(self) -> None:
        self.call(self._start_workers())

    async def _start_workers(self) -> None:
        await GroupConsumer(self.redis, self.keys, "backlog", "archive", "nobody").ensure_group()
        transport = RedisTransport(self.redis, self.keys, self.settings)
        for stage in self.pipeline.stages[:2]:
            for runner in stage_runners(transport, stage, self.settings, Metrics(CollectorRegistry()),
                                        id_fields=self.pipeline.id_fields, results=self.pipeline.results,
                                        prioritized=self.pipeline.prioritized):
                self._runners.append(runner)
                self._tasks.append(asyncio.create_task(runner.run()))
                await runner.started.wait()

    def serve(self, api: ApiSettings) -> str:
        """Start an API server for ``api`` on a free loopback port; its base URL."""
        port = free_port()
        config = uvicorn.Config(create_app(self.pipeline, self.settings, api), host="127.0.0.1", port=port,
                                log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        self._servers.append(server)
        self.soon(lambda: self._tasks.append(self.loop.create_task(server.serve())))
        self.call(_until(lambda: server.started, 20.0))
        return f"http://127.0.0.1:{port}"

    def publish(self, stream: str, items: Iterable[tuple[dict[str, Any], str]]) -> list[str]:
        publisher = Publisher(self.redis, self.keys)
        return self.call(publisher.publish_many(stream, list(items)))

    def wait(self, check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
        """Poll an async ``check`` on the stack's loop until truthy."""
        return self.call(_poll(check, timeout), timeout + 5)

    def stop(self) -> None:
        self.call(self._stop(), 60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    async def _stop(self) -> None:
        self.faults.released.set()
        for server in self._servers:
            server.should_exit = True
        for runner in self._runners:
            runner.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.redis.aclose()


async def _until(check: Callable[[], bool], timeout: float) -> None:
    async def ready() -> bool:
        return check()
    await _poll(ready, timeout)


async def _poll(check: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    return await wait_for(check, timeout, every=0.05)


def seed(stack: Stack) -> None:
    """A finished task, a running one, a backlog (lag) and dead letters of both running stages."""
    stack.publish("backlog", [({"n": n}, f"b{n}") for n in range(BACKLOG)])
    stack.publish("tasks", [({"n": 1}, "r-done"), ({"hold": True}, "r-hold")])
    stack.publish("tasks", [({"poison": True, "note": "bad-a first"}, "p-a1"),
                            ({"poison": True, "note": "bad-a second"}, "p-a2"),
                            ({"poison": True, "note": "bad-b only"}, "p-b1"),
                            ({"poison": True, "note": "fix me", "keep": {"a": 1, "b": 2}}, "fixme"),
                            ({"poison": True, "note": "on its own"}, "solo"),
                            ({"poison": True, "note": HOSTILE_NOTE, "big": BIG}, "hostile"),
                            ({"fragile": True}, "f-1"), ({"fragile": True}, "f-2")])
    redis, keys = stack.redis, stack.keys

    async def settled() -> bool:
        done = await redis.xlen(keys.stream("results")) >= 1
        held = (await redis.xpending(keys.stream("work"), "work"))["pending"] >= 1
        return done and held and await redis.xlen(keys.dlq("ingest")) == 6 and await redis.xlen(keys.dlq("work")) == 2
    stack.wait(settled, 20)
