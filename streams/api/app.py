"""The API app of one pipeline, made by ``create_app`` from settings: no globals.

Bounds on what it accepts: bodies over ``api_max_body_bytes`` are refused
with 413 while they arrive (Content-Length or counted), batches over
``api_max_batch``, payloads over ``max_payload_bytes``. Redis being down is
503 with a line saying so, never a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.api import deadletters, events, operations, tasks
from streams.api.context import Context
from streams.api.settings import ApiSettings
from streams.pipeline import Pipeline
from streams.redis.connection import connect
from streams.settings import Settings, secrets
from streams.text.redact import redact

STATIC = resources.files("streams.api") / "static"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: http: https:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
}


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, reading no more than that."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _too_large(self.limit, send)
        seen, refused = 0, False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit and not refused:
                refused = True
                await _too_large(self.limit, send)
            return {"type": "http.disconnect"} if refused else message

        async def unless_refused(message: Message) -> None:
            if not refused:  # once the 413 went out, the app's own answer is dropped
                await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if not refused:  # the app failed on the disconnect it was handed: that is expected
                raise


class SecurityHeaders:
    """Headers that keep the dashboard's page to itself; plain ASGI, so streamed chunks pass uncopied."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        # The dashboard's module URLs carry no version: revalidate them, or an upgrade runs stale code.
        extra = [*self.headers, *([(b"cache-control", b"no-cache")] if scope["path"].startswith("/dashboard/")
                                  else [])]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _too_large(limit: int, send: Send) -> None:
    body = b'{"detail":"request body over %d bytes (MILLSTREAM_API_MAX_BODY_BYTES)"}' % limit
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def create_app(pipeline: Pipeline, settings: Settings, api: ApiSettings,
               redis: Redis | None = None) -> FastAPI:
    """The app serving ``pipeline``; it opens a Redis client unless given one (closing only its own)."""
    client = redis or connect(settings)
    ctx = Context(pipeline, settings, api, client)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await app.state.hub.close()
            if redis is None:
                await client.aclose()

    app = FastAPI(title=f"millstream: {pipeline.name}", version="1",
                  description="Tasks, stages, dead letters and live events of one millstream pipeline.",
                  lifespan=lifespan)
    app.state.context = ctx
    app.state.hub = events.Hub(client, ctx.keys.events, api.api_sse_queue, ctx.ends)
    app.state.figures = operations.Figures(ctx, min(1.0, api.api_stats_interval))
    for router in (tasks.router, operations.router, deadletters.router, events.router):
        app.include_router(router)
    _health(app, ctx)
    _dashboard(app)

    @app.exception_handler(RedisError)
    async def redis_down(_: Request, error: RedisError) -> JSONResponse:
        return JSONResponse({"detail": f"Redis unavailable: {redact(str(error), secrets())}"}, 503)

    if api.api_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(api.api_cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type",
                                                                         "Last-Event-ID"])
    app.add_middleware(BodyLimit, limit=api.api_max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def _health(app: FastAPI, ctx: Context) -> None:
    @app.get("/healthz", tags=["health"])
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Redis cannot be reached"}})
    async def ready() -> JSONResponse:
        """Redis answers."""
        try:
            await ctx.redis.ping()
        except (RedisError, OSError) as error:
            return JSONResponse({"ready": False, "problem": redact(str(error), secrets())}, 503)
        return JSONResponse({"ready": True})


def _dashboard(app: FastAPI) -> None:
    index = STATIC / "index.html"
    if not index.is_file():
        return

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(str(index), headers={"Cache-Control": "no-cache"})

    app.mount("/dashboard", StaticFiles(directory=str(STATIC)), name="dashboard")
