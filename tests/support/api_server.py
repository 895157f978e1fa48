"""The API served by uvicorn in a thread on a free loopback port, for tests that call it over HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator

from streams.api.serve import server
from streams.api.settings import ApiSettings
from streams.pipeline import Pipeline
from streams.redis.server import free_port
from streams.settings import Settings


@contextlib.contextmanager
def serving(pipeline: Pipeline, settings: Settings, api: ApiSettings | None = None) -> Iterator[str]:
    """Serve ``pipeline``'s app while the block runs; yield its base URL."""
    api = dataclasses.replace(api or ApiSettings(), api_port=free_port())
    instance = server(pipeline, settings, api)
    thread = threading.Thread(target=instance.run, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{api.api_port}"
    finally:
        instance.should_exit = True
        thread.join(15)
