#!/usr/bin/env bash
# Set up a virtual environment, install the project with its test tools, and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
bash scripts/services.sh || true
.venv/bin/ruff check src tests bench
.venv/bin/python -m pytest "$@"
