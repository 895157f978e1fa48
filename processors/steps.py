"""Time per step of the image pipeline (fetch, ocr, mask, inference, ...), as one histogram."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry, Histogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Steps:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram("millstream_step_seconds", "Time per step of a task, by step.", ["step"],
                                   registry=registry, buckets=BUCKETS)

    @asynccontextmanager
    async def time(self, step: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.histogram.labels(step).observe(time.perf_counter() - started)
