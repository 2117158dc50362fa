"""A fake of the :class:`~vanta.application.ports.delivery.TargetVetter` port: no name is
looked up; hosts named in ``refused`` are refused with the given reason, everything else
passes. It records every URL it was asked about."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from vanta.application.ports.delivery import TargetNotDeliverable

__all__ = ["FakeTargetVetter"]


class FakeTargetVetter:
    def __init__(self, refused: Mapping[str, str] | None = None) -> None:
        self.refused = dict(refused or {})
        self.asked: list[str] = []

    async def vet(self, url: str) -> None:
        self.asked.append(url)
        host = (urlsplit(url).hostname or "").lower()
        if host in self.refused:
            raise TargetNotDeliverable(self.refused[host], host)
