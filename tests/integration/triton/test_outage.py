"""Triton goes away and comes back; the same client recovers without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from processors.inference.circuit_breaker import BreakerPolicy, CircuitBreaker
from processors.inference.client import InferenceConfig, InpaintClient
from processors.inference.errors import CIRCUIT_OPEN, InferenceUnavailable
from processors.inference.server import TritonDistribution, TritonOptions, TritonServer
from processors.local.samples import fixture_set
from tests.integration.triton.conftest import ManualClock, wait_until


@pytest.fixture
def own_server(triton_dist: TritonDistribution) -> Iterator[TritonServer]:
    """A server this test may stop; the session's one stays up for the others."""
    server = TritonServer(TritonOptions(), dist=triton_dist)
    server.start()
    yield server
    server.stop()


async def test_calls_fail_as_retryable_while_triton_is_down_and_succeed_once_it_is_back(
    own_server: TritonServer, clock: ManualClock
) -> None:
    sample = fixture_set(per_background=1, seed=5)[1]
    config = InferenceConfig(url=own_server.grpc_url, deadline=4.0, max_attempts=20, backoff_cap=0.2)
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, reset_after=30.0), clock=clock)
    async with InpaintClient(config, CollectorRegistry(), breaker=breaker) as client:
        await client.inpaint(sample.image, sample.mask, False)
        own_server.stop()

        started = time.monotonic()
        with pytest.raises(InferenceUnavailable) as down:
            await client.inpaint(sample.image, sample.mask, False)
        assert time.monotonic() - started < config.deadline + 1.0
        assert down.value.kind in {"unavailable", CIRCUIT_OPEN}
        assert breaker.state == "open"  # the retries counted as failures
        with pytest.raises(InferenceUnavailable) as fast:
            await client.inpaint(sample.image, sample.mask, True)
        assert fast.value.kind == CIRCUIT_OPEN

        own_server.start()
        await wait_until(client.ready, timeout=30.0)
        clock.advance(30.0)  # the breaker lets a probe through
        out = await client.inpaint(sample.image, sample.mask, False)

        assert out.shape == sample.image.shape
        assert breaker.state == "closed"
