"""Under concurrent load, Triton's dynamic batcher runs several requests per execution."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, generate_latest

from processors.inference.client import InpaintClient
from processors.local.samples import fixture_set


async def test_thirty_two_concurrent_requests_are_executed_in_batches(
    client: InpaintClient, registry: CollectorRegistry
) -> None:
    samples = fixture_set(per_background=2, seed=11)  # 10 images, reused
    before = (await client.batch_stats())["inpaint_short"]

    await asyncio.gather(*(client.inpaint(s.image, s.mask, False) for s in (samples * 4)[:32]))

    after = (await client.batch_stats())["inpaint_short"]
    inferences = after.inference_count - before.inference_count
    executions = after.execution_count - before.execution_count
    assert inferences == 32
    assert executions < inferences
    assert any(size > 1 for size in after.executions_by_batch_size)
    exposed = generate_latest(registry).decode()
    assert 'millstream_triton_batch_executions_total{batch_size="8",model="inpaint_short"}' in exposed
    assert 'millstream_inference_latency_seconds_count{model="inpaint_short"} 32.0' in exposed
    assert 'millstream_inference_in_flight{model="inpaint_short"} 0.0' in exposed
