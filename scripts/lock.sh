#!/usr/bin/env bash
# Regenerate requirements.lock: resolve Sluice with the extras ml, mlflow, dev and fuzz in a throwaway venv,
# unconstrained by the current lock, and pin every package that lands in it.
# Usage: scripts/lock.sh            (then review `git diff requirements.lock` and run the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python_bin" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check ".[ml,mlflow,dev,fuzz]"
{
  echo "# Pinned versions of every Python package Sluice installs with the extras ml, mlflow, dev and fuzz (the CI set)."
  echo "# scripts/setup.sh installs with these as constraints; scripts/audit.sh audits exactly these."
  echo "# Regenerate with scripts/lock.sh after changing dependencies in pyproject.toml."
  "$work/venv/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^sluice @'
} > requirements.lock.new
mv requirements.lock.new requirements.lock
echo "requirements.lock: $(grep -c '==' requirements.lock) packages pinned"
