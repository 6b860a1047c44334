#!/usr/bin/env bash
# Install everything the tests need (Python extras here; npm tools and helm are fetched by the
# test fixtures into .tools/) and run the whole suite, slow end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "ml,mlflow,dev,fuzz"
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy   # the folders listed in pyproject.toml [tool.mypy]
bash scripts/audit.sh   # git version floor; dependency audit (warns when the advisory service is out of reach)
# The stages and operator images, once, for the `sluice run --containers` and image tests (as root
# on Debian it installs podman, runc and mmdebstrap; layers are cached between runs). Where no
# engine can be had, those tests skip and say why.
bash scripts/images.sh > /dev/null || echo "scripts/images.sh failed: container tests will skip or fail" >&2
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
.venv/bin/python -m benchmarks --quick > /dev/null
