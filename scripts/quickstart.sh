#!/usr/bin/env bash
# Install Sluice, then run the main job: sum-of-two prepared, trained, evaluated and served
# locally by a KServe model server, ending with the served model answering a prediction, and with
# `sluice` usable from any shell (scripts/launcher.sh: a ~/.local/bin link, or the PATH line to add).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh ml
export PATH="$PWD/.venv/bin:$PATH"
sluice run workflows/sum-of-two.yaml
echo "Asking the served model: 300 + 400 = ?"
sluice predict sum-of-two 300 400
echo "The server keeps running: 'sluice endpoints' lists it, 'sluice endpoints stop sum-of-two' stops it."
echo "Runs live in ${SLUICE_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/sluice}: 'sluice runs', 'sluice logs latest'."
bash scripts/launcher.sh
