"""``millstream up`` (the whole stack on one machine) and ``millstream submit``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import orjson
import typer
from aiohttp import web
from PIL import Image
from prometheus_client import CollectorRegistry

from processors.images.fetch import ImageSettings
from processors.images.storage import LocalStore
from processors.inference.server import TritonServer
from processors.inference.settings import TritonSettings
from processors.local import samples
from processors.local.submit import outcomes, submit, task_for
from processors.local.web import application
from processors.pipeline import NAME, build
from streams.metrics import Metrics
from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.server import EmbeddedRedis, free_port
from streams.service.exporter import sample_all
from streams.service.supervisor import Child, Supervisor
from streams.settings import Settings, is_set, section

ROOT = Path.cwd()
STATE = "stack.json"
DATA = Path("var/up")
# The embedded Redis refuses any string over 2 MiB from a client: a producer's huge list item is
# refused at its RPUSH instead of costing the bridge a pass over it (docs/SECURITY.md).
MAX_BULK_BYTES = 2 * 1024 * 1024
LOOPBACK = "127.0.0.1"  # the HTTP server is reachable from other machines only when told to
API_PORT = 8700  # streams.api.settings.ApiSettings.api_port


def _settings(**overrides: Any) -> Settings:
    from streams.cli.common import load_settings

    return load_settings(**overrides)


def _reachable(host: str) -> str:
    """An address this machine reaches the server at: a wildcard bind is reached on loopback."""
    if host in ("", "0.0.0.0", "::"):
        return LOOPBACK
    return f"[{host}]" if ":" in host else host


class Stack:
    """Redis (unless given), Triton (unless given), one worker per stage and bridge, the web server."""

    def __init__(self, settings: Settings, port: int, data: Path, external_redis: bool,
                 host: str = LOOPBACK, api_port: int = API_PORT) -> None:
        self.settings, self.port, self.data, self.host = settings, port, data.resolve(), host
        self.api_port = api_port
        self.api_url = f"http://{_reachable(host)}:{api_port}"
        self.external_redis = external_redis
        self.redis: EmbeddedRedis | None = None
        self.triton: TritonServer | None = None
        self.supervisor = Supervisor(self.data / "logs", grace=settings.shutdown_grace)
        self.inbox = self.data / "inbox"
        self.public_url = f"http://{_reachable(host)}:{port}"

    def start_servers(self) -> tuple[str, str]:
        url = self.settings.redis_url
        if not self.external_redis:
            self.redis = EmbeddedRedis(self.data / "redis", appendonly=True, max_bulk_bytes=MAX_BULK_BYTES)
            url = self.redis.url
        triton_url = section(TritonSettings).triton_url
        if not triton_url:
            typer.echo("starting the embedded tritonserver (models: triton_models/) ...")
            self.triton = TritonServer()
            self.triton.start()
            triton_url = self.triton.grpc_url
        return url, triton_url

    def child_env(self, redis_url: str, triton_url: str) -> dict[str, str]:
        images = section(ImageSettings)
        roots = {str(self.inbox), *images.file_roots}
        return {"MILLSTREAM_REDIS_URL": redis_url, "MILLSTREAM_TRITON_URL": triton_url,
                "MILLSTREAM_PUBLIC_URL": self.public_url, "MILLSTREAM_STORE_DIR": str(self.data / "images"),
                "MILLSTREAM_FILE_ROOTS": ",".join(sorted(roots)), "MILLSTREAM_METRICS_HOST": "127.0.0.1",
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def start_workers(self, env: dict[str, str]) -> dict[str, int]:
        pipeline = build(self.settings)
        ports = {}
        for part in [*(s.name for s in pipeline.stages), *(b.name for b in pipeline.bridges)]:
            ports[part] = free_port()
            command = [sys.executable, "-m", "streams", "worker", "processors.pipeline:build",
                       "--stage", part, "--consumer", f"up-{part}", "--metrics-port", str(ports[part])]
            self.supervisor.start(Child(part, command, env))
        # The HTTP API and dashboard (streams.api): its own process, bound as `millstream api` decides.
        api = [sys.executable, "-m", "streams", "api", "processors.pipeline:build", "--host", self.host,
               "--port", str(self.api_port)]
        self.supervisor.start(Child("api", api, env))
        return ports

    def write_state(self, redis_url: str, triton_url: str) -> None:
        """Where the stack runs, for ``millstream submit`` and other tools on this machine."""
        state = {"redis_url": redis_url, "triton_url": triton_url, "http": self.public_url,
                 "api": self.api_url, "inbox": str(self.inbox), "pid": os.getpid()}
        (self.data / STATE).write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))

    def stop(self) -> None:
        (self.data / STATE).unlink(missing_ok=True)
        self.supervisor.stop()
        if self.triton is not None:
            self.triton.stop()
        if self.redis is not None:
            self.redis.stop()


async def _serve(stack: Stack, redis_url: str, triton_url: str, stop: asyncio.Event) -> web.AppRunner:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    settings = Settings(redis_url=redis_url, namespace=stack.settings.namespace)

    async def redis_ok() -> str | None:
        try:
            await sample_all(settings, metrics)
        except Exception as error:  # noqa: BLE001 - readiness reports, it does not fail
            return f"redis: {error}"
        return None

    async def triton_ok() -> str | None:
        host = triton_url.rsplit(":", 1)[0]
        if stack.triton is None:
            return None  # an external Triton: the operate workers check it themselves
        http = stack.triton.http_url
        http = http if http.startswith("http") else f"http://{http}"
        try:
            async with aiohttp.ClientSession() as session, session.get(f"{http}/v2/health/ready") as response:
                return None if response.status == 200 else f"triton at {host}: {response.status}"
        except aiohttp.ClientError as error:
            return f"triton: {error}"

    async def workers_ok() -> str | None:
        down = [n for n, r in stack.supervisor.running.items() if r.process.poll() is not None]
        return f"restarting: {', '.join(down)}" if down else None

    store = LocalStore(stack.data / "images", stack.public_url)
    app = application(store, registry, {"redis": redis_ok, "triton": triton_ok, "workers": workers_ok})
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, stack.host, stack.port).start()
    return runner


async def _run(stack: Stack, redis_url: str, triton_url: str, demo: bool, keep: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await _serve(stack, redis_url, triton_url, stop)
    stack.write_state(redis_url, triton_url)
    typer.echo(f"millstream up: {stack.public_url}  (/healthz /readyz /metrics /images/<name>)")
    typer.echo(f"  api      {stack.api_url}  (dashboard at /, schema at /openapi.json; docs/API.md)")
    typer.echo(f"  redis    {redis_url}\n  triton   {triton_url}\n  logs     {stack.data / 'logs'}")
    typer.echo("  submit   millstream submit IMAGE... --wait   (or RPUSH JSON tasks to img:translate:tasks)")
    try:
        if demo:
            await _demo(stack, redis_url)
            if not keep:
                return
        while not stop.is_set():
            stack.supervisor.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await runner.cleanup()


async def _demo(stack: Stack, redis_url: str) -> None:
    folder = stack.data / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n, is_long in enumerate([False, False, True]):
        path = folder / f"product-{n}{'-long' if is_long else ''}.png"
        Image.fromarray(samples.product_image(is_long, seed=n).image).save(path)
        files.append((path, is_long))
    tasks = [task_for(str(path), stack.inbox, is_long) for path, is_long in files]
    redis = connect(Settings(redis_url=redis_url))
    keys = Keys(stack.settings.namespace, NAME)
    try:
        await submit(redis, keys, tasks, stack.settings)
        typer.echo(f"demo: submitted {len(tasks)} generated Chinese product images from {folder}")
        found = await outcomes(redis, keys, {t["request_id"] for t in tasks}, seconds=600)
    finally:
        await redis.aclose()
    for t in tasks:
        result = found.get(t["request_id"])
        if result is None:
            typer.echo(f"  {t['image_id']}: no outcome within 600 s (see {stack.data / 'logs'})")
        elif result["outcome"] == "success":
            name = result["image_url"].rsplit("/", 1)[1]
            local = stack.data / "images" / name
            typer.echo(f"  {t['image_id']}: translated -> {result['image_url']}  ({local})")
        else:
            typer.echo(f"  {t['image_id']}: error: {result['error_message']}")


def up(
    port: Annotated[int, typer.Option(help="Port of the HTTP server")] = 8080,
    api_port: Annotated[int, typer.Option(help="Port of the API and dashboard")] = API_PORT,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0: every interface)")] = LOOPBACK,
    redis_url: Annotated[str | None, typer.Option(help="Use this Redis instead of an embedded one")] = None,
    data: Annotated[Path, typer.Option(help="Directory for Redis data, images and logs")] = DATA,
    demo: Annotated[bool, typer.Option(help="Submit generated sample images, print results, stop")] = False,
    keep: Annotated[bool, typer.Option(help="With --demo: keep running afterwards")] = False,
) -> None:
    """Run the whole image-translation stack on this machine until Ctrl-C or SIGTERM."""
    settings = _settings(redis_url=redis_url, metrics_port=0)
    external = redis_url is not None or is_set("redis_url")
    stack = Stack(settings, port, data, external, host, api_port)
    try:
        redis_url_used, triton_url = stack.start_servers()
        stack.start_workers(stack.child_env(redis_url_used, triton_url))
        asyncio.run(_run(stack, redis_url_used, triton_url, demo, keep))
    finally:
        stack.stop()
        typer.echo("millstream up: stopped; no process left behind")


def submit_command(
    sources: Annotated[list[str], typer.Argument(help="Image files or URLs")],
    long: Annotated[bool, typer.Option("--long", help="Tall product-detail images")] = False,
    wait: Annotated[bool, typer.Option(help="Wait and print each outcome")] = False,
    data: Annotated[Path, typer.Option(help="The `millstream up` directory to submit to")] = DATA,
    callback_url: Annotated[str | None, typer.Option(help="POST each outcome here")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait")] = 600.0,
) -> None:
    """Publish image-translation tasks; with --wait, print each outcome.

    Without MILLSTREAM_REDIS_URL it submits to the stack `millstream up` runs from ``--data``.
    """
    state_file = data / STATE
    state = orjson.loads(state_file.read_bytes()) if state_file.exists() else {}
    redis_url = None if is_set("redis_url") else state.get("redis_url")
    settings = _settings(redis_url=redis_url)
    inbox = Path(state.get("inbox", data / "inbox"))
    try:
        tasks = [task_for(s, inbox, long, callback_url) for s in sources]
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error)) from None

    async def go() -> dict[str, dict[str, Any]]:
        redis = connect(settings)
        keys = Keys(settings.namespace, NAME)
        try:
            ids = await submit(redis, keys, tasks, settings)
            for t, entry in zip(tasks, ids, strict=True):
                typer.echo(f"submitted {t['image_id']}: request_id={t['request_id']} entry={entry}")
            return await outcomes(redis, keys, {t["request_id"] for t in tasks}, timeout) if wait else {}
        finally:
            await redis.aclose()

    found = asyncio.run(go())
    for t in tasks if wait else []:
        result = found.get(t["request_id"], {"outcome": "pending", "error_message": "no outcome yet"})
        detail = result.get("image_url") or result.get("error_message")
        typer.echo(f"{t['image_id']}: {result['outcome']}: {detail}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("up")(up)
    app.command("submit")(submit_command)
