"""The ``TargetVetter`` port over the SSRF policy the webhook sender enforces."""

from __future__ import annotations

import asyncio

from vanta.adapters.webhooks.ssrf import TargetPolicy, TargetRefused, resolve_and_vet
from vanta.application.ports.delivery import TargetNotDeliverable

__all__ = ["PolicyTargetVetter"]


class PolicyTargetVetter:
    """Resolves the host with the loop's ``getaddrinfo`` (never blocks the loop) and judges
    every address by ``policy``. A lookup that takes longer than ``timeout_seconds`` counts
    as unresolvable: the caller is answering an HTTP request."""

    def __init__(self, policy: TargetPolicy, *, timeout_seconds: float = 5.0) -> None:
        self._policy = policy
        self._timeout = timeout_seconds

    async def vet(self, url: str) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await resolve_and_vet(url, self._policy)
        except TargetRefused as e:
            raise TargetNotDeliverable(e.reason, e.detail) from None
        except TimeoutError:
            raise TargetNotDeliverable("unresolvable", "name lookup timed out") from None
