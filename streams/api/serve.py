"""Serving the API with uvicorn, bound where the settings allow."""

from __future__ import annotations

import logging

import uvicorn

from streams.api.app import create_app
from streams.api.settings import ApiSettings
from streams.pipeline import Pipeline
from streams.settings import Settings

log = logging.getLogger("millstream.api")


def server(pipeline: Pipeline, settings: Settings, api: ApiSettings) -> uvicorn.Server:
    """A uvicorn server for the pipeline's app; without tokens it binds to 127.0.0.1 whatever the host."""
    if api.open and api.api_host != api.bind_host:
        log.warning("no MILLSTREAM_API_READ_TOKENS or MILLSTREAM_API_ADMIN_TOKENS configured: "
                    "binding to %s only, not %s", api.bind_host, api.api_host)
    config = uvicorn.Config(create_app(pipeline, settings, api), host=api.bind_host, port=api.api_port,
                            log_level=settings.log_level.lower(), server_header=False, proxy_headers=False,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            log_config=None)  # our logging (setup_logging): redacted, escaped
    return uvicorn.Server(config)


async def serve(pipeline: Pipeline, settings: Settings, api: ApiSettings) -> None:
    """Serve until SIGINT or SIGTERM; then close what the pipeline's factory opened."""
    instance = server(pipeline, settings, api)
    scope = "open to this machine (no token configured)" if api.open else "bearer tokens required"
    log.info("millstream api: pipeline %s on http://%s:%d (%s); dashboard at /, schema at /openapi.json",
             pipeline.name, api.bind_host, api.api_port, scope)
    try:
        await instance.serve()
    finally:
        for close in pipeline.on_stop:
            await close()
