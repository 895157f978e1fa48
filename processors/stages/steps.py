"""Steps of a task (fetch, ocr, mask, inference, translation, render, store): timed, and named in errors.

``async with steps.step("render"):`` observes the step's duration and turns an
unexpected exception into a PermanentError saying which step failed, so every
failure point of the seed ends as an error record a user can read. Errors that
already say whether a retry helps (ProcessingError) pass through unchanged.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry, Histogram

from streams.errors import PermanentError, ProcessingError
from streams.policy import describe

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class StepFailed(PermanentError):
    """An unexpected failure inside one named step."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"{step} failed: {describe(error)}")
        self.step = step


class Steps:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram("millstream_step_seconds", "Time per step of a task, by step.", ["step"],
                                   registry=registry, buckets=BUCKETS)

    @asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        except ProcessingError:
            raise
        except Exception as error:
            raise StepFailed(name, error) from error
        finally:
            self.histogram.labels(name).observe(time.perf_counter() - started)
