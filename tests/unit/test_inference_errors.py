"""Error mapping, input validation, backoff and Triton's JSON, without a server."""

from __future__ import annotations

import random

import numpy as np
import pytest

from processors.inference.config import InferenceConfig, backoff, validated
from processors.inference.errors import InferenceRejected, InferenceUnavailable, classify
from processors.inference.stats import batch_stats_from_json, model_shape_from_json
from processors.inference.tiles import ModelShape


@pytest.mark.parametrize(
    ("status", "message", "error", "kind"),
    [
        ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", InferenceUnavailable, "unavailable"),
        ("StatusCode.UNAVAILABLE", "Exceeds maximum queue size", InferenceUnavailable, "overloaded"),
        ("StatusCode.RESOURCE_EXHAUSTED", "too many", InferenceUnavailable, "overloaded"),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", InferenceUnavailable, "deadline"),
        ("StatusCode.UNKNOWN", "Stream removed", InferenceUnavailable, "unavailable"),
        (None, "something odd", InferenceUnavailable, "unavailable"),
        ("StatusCode.INVALID_ARGUMENT", "unexpected shape for input 'IMAGE'", InferenceRejected, "invalid"),
        ("StatusCode.NOT_FOUND", "Request for unknown model", InferenceRejected, "invalid"),
        ("StatusCode.INTERNAL", "inpaint_short: RuntimeError: boom", InferenceRejected, "model_error"),
    ],
)
def test_triton_failures_map_to_retryable_or_permanent_errors(
    status: str | None, message: str, error: type[Exception], kind: str
) -> None:
    mapped = classify(status, message, "inpaint_short")

    assert isinstance(mapped, error)
    assert mapped.kind == kind and mapped.model == "inpaint_short"
    assert message in str(mapped)


@pytest.mark.parametrize(
    ("image", "mask"),
    [
        (np.zeros((10, 10, 3), np.float32), np.zeros((10, 10), np.uint8)),
        (np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8)),
        (np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10), np.uint8)),
        (np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), np.uint8)),
        (np.zeros((0, 10, 3), np.uint8), np.zeros((0, 10), np.uint8)),
    ],
)
def test_inputs_of_the_wrong_shape_or_type_are_rejected_as_permanent(
    image: np.ndarray, mask: np.ndarray
) -> None:
    with pytest.raises(InferenceRejected) as rejected:
        validated(image, mask, "inpaint_long")

    assert rejected.value.kind == "invalid"


def test_a_mask_may_be_boolean_or_have_a_channel_axis() -> None:
    image = np.zeros((4, 5, 3), np.uint8)
    flags = np.zeros((4, 5, 1), bool)
    flags[1, 2] = True

    _, mask = validated(image, flags, "inpaint_short")

    assert mask.shape == (4, 5) and mask.dtype == np.uint8 and mask.sum() == 1


def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter() -> None:
    rng = random.Random(4)
    delays = [[backoff(attempt, 0.1, 2.0, rng) for _ in range(200)] for attempt in (1, 2, 3, 8)]

    assert [round(max(d), 1) for d in delays] == [0.1, 0.2, 0.4, 2.0]
    assert all(min(d) >= 0 for d in delays)


def test_a_config_with_no_concurrency_is_refused() -> None:
    with pytest.raises(ValueError):
        InferenceConfig(short_concurrency=0)


def test_model_shape_is_read_from_triton_metadata() -> None:
    metadata = {
        "name": "inpaint_long",
        "inputs": [
            {"name": "IMAGE", "datatype": "UINT8", "shape": ["-1", "1024", "384", "3"]},
            {"name": "MASK", "datatype": "UINT8", "shape": ["-1", "1024", "384", "1"]},
        ],
    }

    assert model_shape_from_json(metadata) == ModelShape(1024, 384)


def test_batch_sizes_are_read_from_triton_statistics_and_summed_over_versions() -> None:
    response = {
        "model_stats": [
            {
                "name": "inpaint_short",
                "version": "1",
                "inference_count": "12",
                "execution_count": "3",
                "batch_stats": [
                    {"batch_size": "4", "compute_infer": {"count": "2", "ns": "9"}},
                    {"batch_size": "2", "compute_infer": {"count": "1", "ns": "9"}},
                ],
            },
            {
                "name": "inpaint_short",
                "version": "2",
                "inference_count": "1",
                "execution_count": "1",
                "batch_stats": [{"batch_size": "1", "compute_infer": {"count": "1"}}],
            },
            {"name": "inpaint_long", "version": "1"},
        ]
    }

    stats = batch_stats_from_json(response)

    assert stats["inpaint_short"].inference_count == 13
    assert stats["inpaint_short"].execution_count == 4
    assert stats["inpaint_short"].executions_by_batch_size == {1: 1, 2: 1, 4: 2}
    assert stats["inpaint_short"].compute_ns_by_batch_size == {1: 0, 2: 9, 4: 9}
    assert stats["inpaint_short"].mean_batch_size == 13 / 4
    assert stats["inpaint_long"].mean_batch_size == 0.0


def test_triton_settings_become_the_client_config_and_an_embedded_url_wins() -> None:
    from processors.inference.settings import TritonSettings

    settings = TritonSettings(triton_url="triton:8001", triton_short_concurrency=4, triton_breaker_reset=1.5)

    assert settings.client_config().url == "triton:8001"
    assert settings.client_config("127.0.0.1:9").url == "127.0.0.1:9"
    assert settings.client_config().short_concurrency == 4
    assert settings.client_config().breaker.reset_after == 1.5
    assert TritonSettings().client_config().url == "127.0.0.1:8001"
