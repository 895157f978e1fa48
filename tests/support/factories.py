"""Pipelines for worker processes started by tests, configured by MSTEST_* variables."""

from __future__ import annotations

import asyncio
import os

from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.settings import Settings
from streams.stage import Stage


def copier(settings: Settings) -> Pipeline:
    """One stage copying ``in`` to ``out``, tagging each output with the consumer's name.

    MSTEST_DELAY: seconds per message; MSTEST_SLOW_CONSUMER: only that consumer
    is slow (MSTEST_SLOW_DELAY seconds); MSTEST_PRIORITIES=1: "in" is read by priority;
    MSTEST_KEY: the stage is keyed by that payload field (MSTEST_PARTITIONS partitions).
    """
    env = os.environ
    delay = float(env.get("MSTEST_DELAY", "0"))
    if env.get("MSTEST_SLOW_CONSUMER") == settings.consumer:
        delay = float(env["MSTEST_SLOW_DELAY"])

    async def copy(message: Message) -> list[Outgoing]:
        if delay:
            await asyncio.sleep(delay)
        return [Outgoing({**message.payload, "by": settings.consumer})]

    stage = Stage(
        "copy", "in", copy, sinks=["out"],
        concurrency=int(env.get("MSTEST_CONCURRENCY", "8")),
        batch_size=int(env.get("MSTEST_BATCH", "100")),
        max_in_flight=int(env.get("MSTEST_MAX_IN_FLIGHT", "0")),
        deadline=float(env.get("MSTEST_DEADLINE", "600")),
        priorities=env.get("MSTEST_PRIORITIES") == "1",
        key=env.get("MSTEST_KEY", ""), partitions=int(env.get("MSTEST_PARTITIONS", "16")),
    )
    return Pipeline(env["MSTEST_PIPELINE"], [stage])


def legacy_bridge(settings: Settings) -> Pipeline:
    """Only the list ingress, from list MSTEST_LIST into stream "tasks"."""
    from streams.bridge import ListIngress

    return Pipeline(os.environ["MSTEST_PIPELINE"], [],
                    bridges=[ListIngress("legacy-ingress", os.environ["MSTEST_LIST"], "tasks", batch=50)])
