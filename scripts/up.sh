#!/usr/bin/env bash
# Install and start the platform on its embedded default (SQLite, in-process bus, local files).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c constraints.txt -e .
exec .venv/bin/vanta up "$@"
