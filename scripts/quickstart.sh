#!/usr/bin/env bash
# Install Sluice and run the main job: sum-of-two trained, evaluated and served locally,
# ending with the served model answering a prediction.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh ml
export PATH="$PWD/.venv/bin:$PATH"
sluice validate workflows/sum-of-two.yaml
