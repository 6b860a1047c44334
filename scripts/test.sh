#!/usr/bin/env bash
# Install everything the tests need (Python extras here; npm tools and helm are fetched by the
# test fixtures into .tools/) and run the whole suite, slow end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "ml,dev,fuzz"
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy   # the folders listed in pyproject.toml [tool.mypy]
bash scripts/audit.sh   # git version floor; dependency audit (warns when the advisory service is out of reach)
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
.venv/bin/python -m benchmarks --quick > /dev/null
