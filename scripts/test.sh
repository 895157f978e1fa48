#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole check: ruff, mypy --strict, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,pipeline,triton
.venv/bin/ruff check streams processors tests bench examples deploy
.venv/bin/mypy
.venv/bin/pytest -q --durations=15 "$@"  # the slowest tests: the suite must stay under 15 minutes
