"""Shared fixtures: service discovery that skips on a laptop and fails loudly on CI."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get("VANTA_TEST_POSTGRES_URL",
                              "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _reachable(url: str) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> str:
    if _reachable(url):
        return url
    msg = f"{name} is not reachable at {url}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{msg} (CI=true: services are required)")
    pytest.skip(f"{msg}; set the URL env variable or start it")


@pytest.fixture
def postgres_url() -> str:
    return require_service("PostgreSQL", POSTGRES_URL)


# --- running the tiers on several cores (pytest-xdist, `--dist loadgroup`) -------------------
# Tests that start clusters of real processes and time their recovery run one after another
# on one worker, first, while the other workers take the rest file by file: two of them at
# once would fight over the cores they time, and two share Redis db 14 under one tenant.
SERIAL_FILES = frozenset({
    "tests/e2e/test_production_profile.py",
    "tests/e2e/test_delivery_faults.py",
    "tests/e2e/test_bridged_sigkill.py",
    "tests/e2e/test_reconcile_paper.py",
    "tests/e2e/test_tracing.py",
    "tests/e2e/test_bench_smoke.py",
})


def _serial(item: pytest.Item) -> bool:
    path = item.nodeid.split("::", 1)[0]
    return path in SERIAL_FILES or item.get_closest_marker("ha") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if getattr(config.option, "dist", "no") == "no":
        return
    # xdist hands tests out by node id: tests sharing one (Schemathesis's operations) would
    # run once and the rest silently never; such a file runs in a process of its own
    seen: set[str] = set()
    twice = {i.nodeid for i in items if i.nodeid in seen or seen.add(i.nodeid)}
    if twice:
        raise pytest.UsageError(f"node ids collected twice, cannot run on workers: {twice}")
    for item in items:
        group = "serial" if _serial(item) else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
    # with --no-loadscope-reorder the scheduler hands out groups in collection order
    items.sort(key=lambda item: not _serial(item))
