#!/usr/bin/env bash
# Create .venv with Python 3.11+ and install Sluice with the given extras (default: ml), every
# package at the version pinned in requirements.lock (the versions scripts/audit.sh audits).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-ml}"
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[${extras}]"
