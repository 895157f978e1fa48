"""Access to the bundled tritonserver in tests: skip locally but fail in CI when it is missing."""

from __future__ import annotations

import pytest

from processors.inference.server import TritonDistribution, TritonNotInstalled
from tests.conftest import IN_CI


def require_tritonserver() -> TritonDistribution:
    try:
        return TritonDistribution.locate()
    except TritonNotInstalled as error:
        if IN_CI:
            pytest.fail(str(error))
        pytest.skip(str(error))
