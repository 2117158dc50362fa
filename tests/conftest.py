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
