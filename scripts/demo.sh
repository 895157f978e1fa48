#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the whole image-translation pipeline on embedded
# defaults (a local redis-server and the bundled tritonserver, started for you), submit
# generated Chinese product images, and print where the translated images are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,pipeline,triton
.venv/bin/millstream up --demo "$@"
