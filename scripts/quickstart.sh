#!/usr/bin/env bash
# Install Sluice, then run the main job: sum-of-two prepared, trained, evaluated and served
# locally by a KServe model server, ending with the served model answering a prediction.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh ml
export PATH="$PWD/.venv/bin:$PATH"
sluice run workflows/sum-of-two.yaml
echo "Asking the served model: 300 + 400 = ?"
sluice predict sum-of-two 300 400
echo "The server keeps running: 'sluice endpoints' lists it, 'sluice endpoints stop sum-of-two' stops it."
