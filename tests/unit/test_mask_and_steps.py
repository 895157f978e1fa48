"""Masks from OCR boxes, and named failure points (no I/O)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from processors.stages.mask import build_mask, parse_ocr_result
from processors.stages.steps import StepFailed, Steps
from streams.errors import InvalidPayload, RetryableError

OCR = [[[[10, 10], [50, 10], [50, 20], [10, 20]], ["包邮", 0.98]]]


def test_mask_covers_the_box_grown_by_the_dilation() -> None:
    mask = build_mask(40, 80, parse_ocr_result(OCR), dilation=2)
    rows, cols = (mask > 0).nonzero()
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (8, 22, 8, 52)
    assert set(mask.ravel().tolist()) == {0, 255}


@pytest.mark.parametrize(
    ("value", "problem"),
    [("boxes", "must be a list"), ([[[[1, 2]], ["x", 1]]], "ocr_result\\[0\\]"), ([[[[1, 2]] * 4, [3, 1]]], "text"),
     ([[[[0, 0], [float("inf"), 0], [1, 1], [0, 1]], ["x", 1]]], "ocr_result\\[0\\] .*coordinates must be finite"),
     ([[[[0, 0], [float("nan"), 0], [1, 1], [0, 1]], ["x", 1]]], "ocr_result\\[0\\] .*coordinates must be finite")],
)
def test_malformed_ocr_results_are_invalid_payloads(value, problem) -> None:
    with pytest.raises(InvalidPayload, match=problem):
        parse_ocr_result(value)


async def test_unexpected_errors_name_their_step_and_classified_ones_pass_through() -> None:
    steps = Steps(CollectorRegistry())
    with pytest.raises(StepFailed, match="render failed: ZeroDivisionError"):
        async with steps.step("render"):
            _ = 1 / 0
    with pytest.raises(RetryableError):
        async with steps.step("inference"):
            raise RetryableError("Triton is restarting")
    assert steps.histogram.labels("render")._sum.get() > 0
