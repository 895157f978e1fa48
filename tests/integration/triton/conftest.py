"""A real tritonserver (the launcher's) for the session, and a client per test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from processors.inference.circuit_breaker import BreakerPolicy, CircuitBreaker
from processors.inference.client import InferenceConfig, InpaintClient
from processors.inference.server import TritonDistribution, TritonOptions, TritonServer
from tests.support.triton import require_tritonserver


@pytest.fixture(scope="session")
def triton_dist() -> TritonDistribution:
    return require_tritonserver()


@pytest.fixture(scope="package")
def triton_server(triton_dist: TritonDistribution) -> Iterator[TritonServer]:
    """Both models on free ports, shared by this package's tests and stopped after them
    (its torch processes would otherwise stay resident for the rest of the suite)."""
    with TritonServer(TritonOptions(), dist=triton_dist) as server:
        yield server


class ManualClock:
    """A clock tests move by hand, so the breaker's reset needs no sleep."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def client(
    triton_server: TritonServer, registry: CollectorRegistry, clock: ManualClock
) -> AsyncIterator[InpaintClient]:
    config = InferenceConfig(url=triton_server.grpc_url, deadline=120.0)
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, reset_after=30.0), clock=clock)
    async with InpaintClient(config, registry, breaker=breaker) as started:
        yield started


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Poll ``check`` (a readiness probe of a real server) until it holds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{check} did not hold within {timeout}s")
        await asyncio.sleep(0.1)
