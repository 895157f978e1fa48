"""``millstream bench api``: the HTTP API's ingest and live-event fan-out against redis-py.

The API runs as its own process (uvicorn, ``python -m bench.api``, a no-op one-stage
pipeline, no tokens) on a free loopback port of an embedded redis-server (unless
--redis-url); the clients run in this process.

- **Ingest:** tasks/s through ``POST /v1/tasks`` in batches of 1 and of 100, from
  ``--connections`` concurrent connections. Baseline: the same payloads as raw ``XADD``
  through redis-py (the entry envelope the publisher writes), the same batches pipelined,
  from as many connections. The API also runs ``ms_publish`` (dedup, status, event).
- **Fan-out:** ``--clients`` SSE clients on ``GET /v1/events`` while ``--events`` tasks
  are published through the engine's publisher (``queued`` events, 100 per call):
  events/s received summed over clients, from the first publish to the last event
  received. Baseline: one redis-py ``XREAD`` loop reading the same events entries
  (COUNT 1000, decoding each entry's transitions), after the fact: one reader's upper bound.

- **Listing depth:** ``GET /v1/tasks?state=waiting`` pages of 50 on a stream of ``--depth``
  entries (1,000,000 by default), at the front and from a cursor 100 entries before the end,
  each the median of 20 requests. Baseline: the same XRANGE through redis-py. The deep page
  must cost what the first one does.

Last line: ``ingest_1_api_per_s=<f> ingest_1_raw_per_s=<f> ingest_1_ratio=<f>``, the same for
``ingest_100``, then ``sse_events_per_s=<f> xread_events_per_s=<f> sse_ratio=<f>``, then
``list_first_ms``, ``list_deep_ms``, ``list_deep_raw_ms``, ``list_depth_ratio`` (deep / first).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import orjson
import typer
from redis.asyncio import Redis

from streams.cli.common import run_async
from streams.codec import encode_payload, envelope
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.redis.server import EmbeddedRedis, free_port
from streams.settings import Settings
from streams.stage import Stage

if TYPE_CHECKING:
    import httpx

ROOT = Path(__file__).resolve().parents[1]
# httpx, uvicorn and FastAPI are imported where used: ``millstream`` registers this command
# (and so imports this module) on installs without the API's packages too.
NAMESPACE = "bench"
Task = dict[str, Any]


async def _noop(message: Message) -> list[Outgoing]:
    return [Outgoing(message.payload)]


def noop_pipeline(name: str) -> Pipeline:
    """One no-op stage, tasks → done; no worker runs it: the API only publishes and streams."""
    return Pipeline(name, [Stage("noop", "tasks", _noop, sinks=["done"])])


def serve(url: str, pipeline: str, port: int, sse_queue: int) -> None:
    """The API process: uvicorn on 127.0.0.1:``port``, until SIGTERM."""
    import uvicorn

    from streams.api.app import create_app
    from streams.api.settings import ApiSettings

    settings = Settings(redis_url=url, namespace=NAMESPACE, metrics_port=0, log_level="WARNING")
    # Clients read as fast as one process can parse: a queue of every event keeps any from being dropped.
    api = ApiSettings(api_port=port, api_sse_queue=sse_queue, api_max_batch=1000)
    uvicorn.run(create_app(noop_pipeline(pipeline), settings, api), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


@contextmanager
def api_server(url: str, pipeline: str, sse_queue: int) -> Iterator[str]:
    """Run the API process while the block runs; yield its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
    env.update(PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "bench.api", url, pipeline, str(port), str(sse_queue)],
                               cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench api: the API process exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("bench api: the API did not become ready within 60 s")


def tasks(prefix: str, count: int) -> list[Task]:
    return [{"request_id": f"{prefix}-{n}", "body": "x" * 64} for n in range(count)]


def batches(items: Sequence[Task], size: int) -> list[Sequence[Task]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


async def _concurrently(work: list[Any], connections: int,
                        send: Callable[[int, Any], Awaitable[None]]) -> float:
    """Seconds to ``send`` every item of ``work``, ``connections`` senders taking the next one."""
    queue = iter(work)

    async def sender(n: int) -> None:
        for item in queue:  # one shared iterator: each item is sent once
            await send(n, item)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for n in range(connections):
            group.create_task(sender(n))
    return time.perf_counter() - started


async def ingest_api(base: str, work: list[Sequence[Task]], connections: int) -> float:
    """Tasks/s through ``POST /v1/tasks``: a batch of one as a task object, others as an array."""
    import httpx

    clients = [httpx.AsyncClient(base_url=base, timeout=60) for _ in range(connections)]

    async def send(n: int, batch: Sequence[Task]) -> None:
        body = orjson.dumps(batch[0] if len(batch) == 1 else list(batch))
        reply = await clients[n].post("/v1/tasks", content=body, headers={"content-type": "application/json"})
        if reply.status_code != 202 or len(orjson.loads(reply.content)["tasks"]) != len(batch):
            raise SystemExit(f"bench api: POST /v1/tasks answered {reply.status_code}: {reply.text[:200]}")

    try:
        await asyncio.gather(*(client.get("/healthz") for client in clients))  # connected before the clock
        elapsed = await _concurrently(work, connections, send)
    finally:
        for client in clients:
            await client.aclose()
    return sum(map(len, work)) / elapsed


async def ingest_raw(url: str, key: str, work: list[Sequence[Task]], connections: int) -> float:
    """Tasks/s as raw XADDs of the same envelopes, each batch pipelined in one round trip."""
    clients = [Redis.from_url(url) for _ in range(connections)]

    async def send(n: int, batch: Sequence[Task]) -> None:
        now = int(time.time() * 1000)
        pipe = clients[n].pipeline(transaction=False)
        for task in batch:
            fields = envelope(encode_payload(task), task["request_id"], 1, now)
            pipe.xadd(key, dict(zip(fields[::2], fields[1::2], strict=True)))
        await pipe.execute()

    try:
        await asyncio.gather(*(client.ping() for client in clients))
        elapsed = await _concurrently(work, connections, send)
    finally:
        for client in clients:
            await client.aclose()
    return sum(map(len, work)) / elapsed


async def _listen(client: httpx.AsyncClient, prefix: str, expected: int,
                  connected: asyncio.Event, done: Callable[[], None]) -> None:
    """Read ``GET /v1/events`` until ``expected`` events of tasks named ``prefix-*`` arrived.

    ``connected`` is set at the first warm-up event: from then on this client misses nothing.
    """
    seen, name = 0, ""
    async with client.stream("GET", "/v1/events", headers={"accept": "text/event-stream"}) as reply:
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:") and name == "job-progress":
                job = str(orjson.loads(line[5:]).get("jobId", ""))
                if job.startswith("warm-"):
                    connected.set()
                elif job.startswith(prefix):
                    seen += 1
                    if seen == expected:
                        done()
                        return


async def fanout(base: str, publisher: Publisher, clients: int, events: int) -> tuple[float, float, str]:
    """(events/s summed over ``clients`` SSE clients, seconds the publishing took, the events
    stream's last id before it)."""
    import httpx

    prefix, finished = f"ev{uuid.uuid4().hex[:6]}", asyncio.Event()
    left = [clients]

    def one_done() -> None:
        left[0] -= 1
        if not left[0]:
            finished.set()

    ready = [asyncio.Event() for _ in range(clients)]
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    timeout = httpx.Timeout(60, read=None)  # heartbeats come every 15 s; the whole run has its own bound
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as http, \
            asyncio.TaskGroup() as group:
        for n in range(clients):
            group.create_task(_listen(http, prefix, events, ready[n], one_done))
        async with asyncio.timeout(60):
            while not all(r.is_set() for r in ready):  # publish warm-up events until every client hears one
                await publisher.publish("tasks", {"warm": True}, f"warm-{uuid.uuid4().hex}")
                await asyncio.sleep(0.05)
        after = await _last_id(publisher.redis, publisher.keys.events)
        started = time.perf_counter()
        for batch in batches(tasks(prefix, events), 100):
            await publisher.publish_many("tasks", [(task, task["request_id"]) for task in batch])
        published = time.perf_counter() - started
        async with asyncio.timeout(300):
            await finished.wait()
        elapsed = time.perf_counter() - started
    return clients * events / elapsed, published, after


async def _last_id(redis: Redis, key: str) -> str:
    newest: Any = await redis.xrevrange(key, count=1)
    return str(newest[0][0].decode()) if newest else "0-0"


async def xread_baseline(redis: Redis, key: str, after: str, events: int) -> float:
    """Events/s of one XREAD loop reading ``events`` transitions from ``key`` after ``after``."""
    seen, last = 0, after
    started = time.perf_counter()
    while seen < events:
        reply: Any = await redis.xread({key: last}, count=1000, block=1000)
        for _, entries in reply:
            for entry_id, fields in entries:
                seen += len(orjson.loads(fields[b"t"]))
                last = entry_id
    return seen / (time.perf_counter() - started)


async def measure(url: str, base: str, pipeline: str, sizes: Sizes,
                  say: Callable[[str], None]) -> dict[str, float]:
    """Run every part once against the API at ``base``; the figures by name."""
    keys = Keys(NAMESPACE, pipeline)
    redis = Redis.from_url(url)
    figures: dict[str, float] = {}
    try:
        for size, count in ((1, sizes.tasks), (100, sizes.batched_tasks)):
            run = uuid.uuid4().hex[:6]
            ours = await ingest_api(base, batches(tasks(f"a{run}", count), size), sizes.connections)
            raw = await ingest_raw(url, keys.stream("raw"), batches(tasks(f"r{run}", count), size),
                                   sizes.connections)
            figures.update({f"ingest_{size}_api_per_s": ours, f"ingest_{size}_raw_per_s": raw,
                            f"ingest_{size}_ratio": ours / raw})
            say(f"ingest, batches of {size}, {count} tasks, {sizes.connections} connections: "
                f"API {ours:,.0f} tasks/s, raw XADD {raw:,.0f} tasks/s (ratio {ours / raw:.3f})")
        sse, published, after = await fanout(base, Publisher(redis, keys), sizes.clients, sizes.events)
        xread = await xread_baseline(redis, keys.events, after, sizes.events)
        figures.update(sse_events_per_s=sse, xread_events_per_s=xread, sse_ratio=sse / xread)
        say(f"fan-out, {sizes.clients} SSE clients, {sizes.events} events each "
            f"(published in {published:.2f} s): "
            f"{sse:,.0f} events/s summed ({sse / sizes.clients:,.0f} per client); one XREAD loop "
            f"{xread:,.0f} events/s (ratio {sse / xread:.2f})")
        listed = await listing_depth(redis, base, keys, sizes.depth)
        figures.update(listed)
        say(f"listing on a stream of {sizes.depth:,} entries, pages of 50: first page "
            f"{listed['list_first_ms']:.2f} ms, from a cursor at the end {listed['list_deep_ms']:.2f} ms "
            f"(ratio {listed['list_depth_ratio']:.2f}); "
            f"the same XRANGE by redis-py {listed['list_deep_raw_ms']:.2f} ms")
    finally:
        await redis.aclose()
    return figures


async def _median_ms(call: Callable[[], Awaitable[object]], runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[runs // 2]


async def listing_depth(redis: Redis, base: str, keys: Keys, depth: int) -> dict[str, float]:
    """Page cost at the front and at the end of a stream of ``depth`` entries (see the module doc)."""
    import httpx

    key, body = keys.stream("tasks"), envelope(b'{"n":1}', "deep", 1, 0)
    for start in range(0, depth, 10_000):
        pipe = redis.pipeline(transaction=False)
        for _ in range(min(10_000, depth - start)):
            pipe.xadd(key, dict(zip(body[::2], body[1::2], strict=True)))
        await pipe.execute()
    tail: Any = await redis.xrevrange(key, count=100)
    cursor = tail[-1][0].decode()
    params = {"stage": "noop", "state": "waiting", "limit": 50}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async def page(extra: dict[str, str]) -> None:
            answer = await client.get("/v1/tasks", params={**params, **extra})
            assert answer.status_code == 200 and len(answer.json()["tasks"]) == 50, answer.text

        first = await _median_ms(lambda: page({}))
        deep = await _median_ms(lambda: page({"page": cursor}))
    raw = await _median_ms(lambda: redis.xrange(key, min=f"({cursor}", count=50))
    return {"list_first_ms": first, "list_deep_ms": deep, "list_deep_raw_ms": raw,
            "list_depth_ratio": deep / first}


class Sizes(NamedTuple):
    tasks: int
    batched_tasks: int
    connections: int
    clients: int
    events: int
    depth: int = 1_000_000


def api(
    tasks_: Annotated[int, typer.Option("--tasks", help="Tasks sent one per request")] = 3000,
    batched: Annotated[int, typer.Option(help="Tasks sent 100 per request")] = 30_000,
    connections: Annotated[int, typer.Option(min=1, help="Concurrent connections of the ingest runs")] = 8,
    clients: Annotated[int, typer.Option(min=1, help="SSE clients of the fan-out run")] = 100,
    events: Annotated[int, typer.Option(min=1, help="Events each SSE client receives")] = 1000,
    depth: Annotated[int, typer.Option(min=200, help="Entries of the stream listed")] = 1_000_000,
    redis_url: Annotated[str | None, typer.Option(help="Use this Redis instead of an embedded one")] = None,
) -> None:
    """The HTTP API vs redis-py: POST /v1/tasks against XADD, SSE fan-out against one XREAD loop."""
    missing = [name for name in ("fastapi", "uvicorn", "httpx") if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(f"bench api needs the API's packages ({', '.join(missing)} missing): "
                         "pip install fastapi uvicorn httpx")
    sizes = Sizes(tasks_, batched, connections, clients, events, depth)
    pipeline = f"api-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="millstream-bench-") as tmp:
        server = None if redis_url else EmbeddedRedis(Path(tmp) / "redis")
        try:
            url = redis_url or server.url  # type: ignore[union-attr]
            typer.echo(f"bench api: redis {url}, {os.cpu_count()} CPUs, {sizes}")
            with api_server(url, pipeline, events + 1000) as base:
                figures = run_async(measure(url, base, pipeline, sizes, typer.echo))
        finally:
            if server:
                server.stop()
    typer.echo(" ".join(f"{name}={value:.6g}" for name, value in figures.items()))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("api")(api)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
