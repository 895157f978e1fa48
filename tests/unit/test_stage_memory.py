"""OCR and the operate stage's CPU work stay within a memory cap on the worst images the limits admit.

Each run is a fresh interpreter whose address space is capped (RLIMIT_AS) at
what it holds after start-up plus ``HEADROOM_MIB`` (tests/unit/stage_memory.py);
docs/MEMORY.md has the measured peaks.
"""

from __future__ import annotations

import pytest

from tests.unit.stage_memory import CASES, HEADROOM_MIB, STAGES, run_isolated


@pytest.mark.timeout(600)
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("case", list(CASES))
def test_the_stage_finishes_under_the_memory_cap(case: str, stage: str) -> None:
    report = run_isolated(case, stage)
    assert report["error"] is None, report
    assert 0 <= report["peak_mib"] < HEADROOM_MIB


@pytest.mark.timeout(600)
def test_mains_ocr_of_a_1x1280_strip_would_have_asked_for_gigabytes_and_failed_under_the_same_cap() -> None:
    report = run_isolated("1x1280", "ocr-unfitted")
    assert report["error"] is not None and report["error"].startswith("ResizeImgError"), report
    assert "Insufficient memory) Failed to allocate 1950105600 bytes" in report["error"]  # 883200 x 736 x 3
