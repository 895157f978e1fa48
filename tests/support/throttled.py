"""A rated pipeline for worker processes started by tests (``python -m streams worker``)."""

from __future__ import annotations

import os
import time

from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.settings import Settings
from streams.stage import Stage


def throttled_copier(settings: Settings) -> Pipeline:
    """Stage "copy" (``in`` -> ``out``) at rate MSTEST_RATE; each output says when its attempt began
    (``at``, unix seconds) and which consumer ran it (``by``). MSTEST_CONCURRENCY: handlers per worker."""
    env = os.environ

    async def copy(message: Message) -> list[Outgoing]:
        return [Outgoing({**message.payload, "at": time.time(), "by": settings.consumer})]

    stage = Stage("copy", "in", copy, sinks=["out"], concurrency=int(env.get("MSTEST_CONCURRENCY", "4")),
                  rate=env["MSTEST_RATE"])
    return Pipeline(env["MSTEST_PIPELINE"], [stage])
