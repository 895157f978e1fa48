"""Read Triton's JSON answers (model metadata, statistics) into our small types.

Triton's JSON renders int64 fields as strings; these functions accept both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from processors.inference.metrics import BatchStats
from processors.inference.tiles import ModelShape


def model_shape_from_json(metadata: Mapping[str, Any]) -> ModelShape:
    """The (height, width) of a model's IMAGE input, from get_model_metadata(as_json=True)."""
    for tensor in metadata.get("inputs", []):
        if tensor.get("name") == "IMAGE":
            dims = [int(d) for d in tensor["shape"]]
            height, width, channels = dims[-3:]
            if channels != 3 or height < 1 or width < 1:
                raise ValueError(f"{metadata.get('name')}: IMAGE must be [-1, H, W, 3], got {dims}")
            return ModelShape(height, width)
    raise ValueError(f"{metadata.get('name')}: no IMAGE input in {metadata}")


def batch_stats_from_json(response: Mapping[str, Any]) -> dict[str, BatchStats]:
    """Per model (all versions summed): images inferred, executions, and executions
    and compute time per batch size, from get_inference_statistics(as_json=True)."""
    totals: dict[str, tuple[int, int, dict[int, int], dict[int, int]]] = {}
    for model in response.get("model_stats", []):
        inferences, executions, sizes, times = totals.get(model["name"], (0, 0, {}, {}))
        for batch in model.get("batch_stats", []):
            size, compute = int(batch["batch_size"]), batch.get("compute_infer", {})
            sizes[size] = sizes.get(size, 0) + int(compute.get("count", 0))
            times[size] = times.get(size, 0) + int(compute.get("ns", 0))
        totals[model["name"]] = (
            inferences + int(model.get("inference_count", 0)),
            executions + int(model.get("execution_count", 0)),
            sizes,
            times,
        )
    return {
        name: BatchStats(i, e, dict(sorted(s.items())), dict(sorted(t.items())))
        for name, (i, e, s, t) in totals.items()
    }
