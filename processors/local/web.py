"""The HTTP face of ``millstream up``: health, readiness, metrics and result images.

``/images/<name>`` serves only names LocalStore makes (content addresses);
any other name is 404, so the handler never reaches a path it did not choose.
The application binds nowhere itself: ``millstream up`` binds it to 127.0.0.1
unless ``--host`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from processors.images.storage import LocalStore, UnsafeName

Check = Callable[[], Awaitable[str | None]]  # None when fine, else what is wrong
IMMUTABLE = "public, max-age=31536000, immutable"


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
        # A name is the hash of the bytes (processors.images.storage): they never change under it.
        return web.FileResponse(path, headers={"Content-Type": "image/png", "Cache-Control": IMMUTABLE})

    app = web.Application()
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/images/{name}", image)
    return app
