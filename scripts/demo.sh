#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the demo on an embedded redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,pipeline,triton
PYTHONPATH=. .venv/bin/python -m examples.demo
