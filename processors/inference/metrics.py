"""Prometheus metrics of the inference client, registered in a registry passed in.

- ``millstream_inference_latency_seconds{model}``: one inference request, retries included
- ``millstream_inference_in_flight{model}``: requests sent and not yet answered
- ``millstream_inference_errors_total{model,kind}``: failed attempts by kind (unavailable,
  overloaded, deadline, circuit_open, invalid, model_error), and calls that ran out of
  their deadline (kind "deadline")
- ``millstream_inference_retries_total{model}``
- ``millstream_triton_batch_executions_total{model,batch_size}``: the batches Triton
  actually formed, from its statistics API (refreshed by the client's poll)
- ``millstream_triton_inferences_total{model}`` / ``..._executions_total{model}``:
  images inferred and model executions; their ratio is the mean batch size
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True, slots=True)
class BatchStats:
    """Triton's cumulative counts for one model."""

    inference_count: int = 0
    execution_count: int = 0
    executions_by_batch_size: Mapping[int, int] = field(default_factory=dict)
    compute_ns_by_batch_size: Mapping[int, int] = field(default_factory=dict)

    @property
    def mean_batch_size(self) -> float:
        return self.inference_count / self.execution_count if self.execution_count else 0.0


class TritonBatchCollector(Collector):
    """Exposes the last BatchStats snapshot per model (the client refreshes it)."""

    def __init__(self) -> None:
        self.snapshot: dict[str, BatchStats] = {}

    def collect(self) -> Iterator[Metric]:
        batches = CounterMetricFamily(
            "millstream_triton_batch_executions",
            "Model executions by the batch size Triton formed",
            labels=["model", "batch_size"],
        )
        inferences = CounterMetricFamily(
            "millstream_triton_inferences", "Images inferred by Triton", labels=["model"]
        )
        executions = CounterMetricFamily(
            "millstream_triton_executions", "Model executions by Triton", labels=["model"]
        )
        for model, stats in sorted(self.snapshot.items()):
            for size, count in sorted(stats.executions_by_batch_size.items()):
                batches.add_metric([model, str(size)], count)
            inferences.add_metric([model], stats.inference_count)
            executions.add_metric([model], stats.execution_count)
        yield from (batches, inferences, executions)


class InferenceMetrics:
    """Every collector of the inference client, in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "millstream_inference_latency_seconds",
            "Latency of one inference request to Triton, retries included",
            ["model"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.in_flight = Gauge(
            "millstream_inference_in_flight",
            "Inference requests awaiting Triton",
            ["model"],
            registry=registry,
        )
        self.errors = Counter(
            "millstream_inference_errors",
            "Failed inference attempts by kind",
            ["model", "kind"],
            registry=registry,
        )
        self.retries = Counter(
            "millstream_inference_retries", "Inference attempts retried", ["model"], registry=registry
        )
        self.batches = TritonBatchCollector()
        registry.register(self.batches)
