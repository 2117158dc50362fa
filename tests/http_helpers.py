"""Client-side conventions the API requires, applied to test clients."""

from __future__ import annotations

import uuid

import httpx

UNLIMITED = {"rate_limit_per_minute": 10_000_000, "rate_limit_burst": 10_000_000}
UNLIMITED_ENV = {"VANTA_RATE_LIMIT_PER_MINUTE": "10000000", "VANTA_RATE_LIMIT_BURST": "10000000"}


def _key(request: httpx.Request) -> None:
    if request.method in ("POST", "PATCH", "DELETE") and "idempotency-key" not in request.headers:
        request.headers["Idempotency-Key"] = uuid.uuid4().hex


async def add_idempotency_key(request: httpx.Request) -> None:
    """Every POST/PATCH/DELETE needs an Idempotency-Key; a fresh one per call, as a client would."""
    _key(request)


def add_idempotency_key_sync(request: httpx.Request) -> None:
    _key(request)
