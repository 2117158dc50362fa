#!/usr/bin/env bash
# Set up the virtual environment with the pinned versions, then run the checks and the test
# tiers cheapest first, stopping at the first failure: ruff, import contracts, mypy, the size
# rule, the fast tiers (unit, application: seconds, no services), then the rest (api,
# contract, integration, e2e, browser).
#
# Arguments go to pytest. Options alone (`-k sizing`, `-x`, `-m postgres`) apply to both pytest
# runs; as soon as one argument names a test path (`tests/unit/test_fees.py::test_x`), pytest
# runs once with exactly the given arguments instead of the tiers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
# A venv whose creation was interrupted has a python but no pip: make it again.
.venv/bin/python -m pip --version >/dev/null 2>&1 || "$PY" -m venv --clear .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
bash scripts/services.sh || true

# The OIDC tests drive a Node.js provider (tests/integration/oidc_mock). Install it from its lock
# file when it is missing or older than the lock; without node/npm, or when npm fails, the OIDC
# tests skip with the reason (and fail when CI=true), so this step never stops the run.
oidc_peer() {
  local dir=tests/integration/oidc_mock
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "test.sh: node/npm not found; the OIDC provider tests will be skipped" >&2
    return 0
  fi
  # npm ci writes node_modules/.package-lock.json last, so it dates a complete install.
  if [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --fetch-retries=2 \
      --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=5000) \
      || echo "test.sh: npm ci in $dir failed; the OIDC provider tests will report it" >&2
  fi
}

# The browser tests (tests/browser) drive Debian's chromium with Playwright and inject axe-core
# from npm. Install chromium with apt when it is missing and we are root, and axe-core from its
# lock file; when either cannot be had the browser tests skip with the reason (and fail when
# CI=true), so this step never stops the run.
browser_peer() {
  if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
      >/dev/null 2>&1 || echo "test.sh: apt-get install chromium failed; the browser tests will report it" >&2
  fi
  local dir=tests/browser
  if command -v npm >/dev/null 2>&1 && \
      [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --fetch-retries=2 \
      --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=5000) \
      || echo "test.sh: npm ci in $dir failed; the accessibility test will report it" >&2
  fi
}

# The Prometheus rule tests drive promtool (Debian's prometheus package). Install it when it
# is missing and we are root with apt; any failure only means those tests skip (or fail when
# CI=true), so this step never stops the run.
promtool_tool() {
  command -v promtool >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: promtool not found; the Prometheus rule tests will be skipped" >&2
    return 0
  fi
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; } \
    >/dev/null 2>&1 || echo "test.sh: apt-get install prometheus failed; the Prometheus rule \
tests will report it" >&2
  return 0
}

# The high-availability tests (pytest marker `ha`) run Redis Sentinel and HAProxy next to
# Debian's redis-server. Install what is missing when we are root with apt; a failure only
# means those tests skip (or fail when CI=true), so this step never stops the run.
ha_tools() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
  command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: ${missing[*]} not found; the HA tests that need them will be skipped" >&2
    return 0
  fi
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
    >/dev/null 2>&1 || echo "test.sh: apt-get install ${missing[*]} failed; the HA tests \
will report it" >&2
  return 0
}

# pytest exits 5 when nothing was collected (e.g. a -k that matches only the other tier).
run_pytest() {
  local rc=0
  .venv/bin/python -m pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "test.sh: no tests selected in this run" >&2
    rc=0
  fi
  return "$rc"
}

names_a_path() {
  local arg
  for arg in "$@"; do
    case "$arg" in -*) continue ;; esac
    [ -e "${arg%%::*}" ] && return 0
  done
  return 1
}

.venv/bin/ruff check src tests bench
# `ruff format --check` is not run here: most of the tree predates the formatter, so pre-commit
# formats the files each commit touches instead.
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/python scripts/check_sizes.py  # modules ≤ 400 lines, functions ≤ 80
promtool_tool
ha_tools

if names_a_path "$@"; then
  oidc_peer
  browser_peer
  run_pytest "$@"
  exit 0
fi
# Both tiers run on VANTA_TEST_WORKERS processes (default 2; 0 runs them in this process):
# whole files go to a worker, and the slow fault tests run one at a time on one worker, first
# (see tests/conftest.py).
workers="${VANTA_TEST_WORKERS:-2}"
xdist=(-n "$workers" --dist loadgroup --no-loadscope-reorder)
run_pytest "${xdist[@]}" tests/unit tests/application "$@"
oidc_peer
browser_peer
# Schemathesis reports every operation under one node id, which workers cannot share out
fuzz=tests/contract/test_openapi_fuzz.py
run_pytest "${xdist[@]}" tests/e2e tests/integration tests/contract tests/api --ignore "$fuzz" "$@"
run_pytest "$fuzz" "$@"
# Playwright's sync API keeps an event loop running for the whole session, which the asyncio
# tests of the other tiers cannot share: the browser tier runs in a pytest process of its own.
run_pytest tests/browser "$@"
