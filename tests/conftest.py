"""Shared test helpers: servers are real, and a missing one fails in CI."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """Return the path of executable ``name``; skip locally but fail in CI when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/setup.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
