"""The HTTP face of ``millstream up``: health, readiness, metrics and result images."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from processors.storage import LocalStore, UnsafeName

Check = Callable[[], Awaitable[str | None]]  # None when fine, else what is wrong


def application(store: LocalStore, registry: CollectorRegistry, checks: dict[str, Check]) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        problems = {name: problem for name, check in checks.items() if (problem := await check())}
        status = 200 if not problems else 503
        return web.json_response({"ready": not problems, "problems": problems}, status=status)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def image(request: web.Request) -> web.StreamResponse:
        try:
            path = store.path_for(request.match_info["name"])
        except UnsafeName:
            raise web.HTTPNotFound() from None
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "image/png"})

    app = web.Application()
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/images/{name}", image)
    return app
