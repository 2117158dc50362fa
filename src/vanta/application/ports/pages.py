"""Keyset pages of the repositories' lists: each returns up to ``limit`` rows in the list's
order, strictly after ``after`` (the order key of the last row of the page before; None for
the first page). The order ends in a unique id, so equal timestamps never skip a row."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Protocol

from vanta.application.ports.records_catalog import InstrumentRecord, OverlayRecord, VaultRecord
from vanta.application.ports.records_tenancy import UserRecord


class VaultPages(Protocol):
    async def page(self, tenant_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[VaultRecord]:
        """In (created_at, vault_id) order."""
        ...

    async def page_all(self, after: tuple[datetime, str] | None,
                       limit: int) -> builtins.list[VaultRecord]:
        """Every tenant's vaults, in (created_at, vault_id) order: for platform jobs (the
        scheduler's snapshots), never for an API answer."""
        ...


class OverlayPages(Protocol):
    async def page(self, tenant_id: str, vault_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[OverlayRecord]:
        """In (applied_at, overlay_id) order."""
        ...


class InstrumentPages(Protocol):
    async def page(self, after: tuple[str, str] | None,
                   limit: int) -> builtins.list[InstrumentRecord]:
        """In (venue, symbol) order; ``after`` is a (venue, symbol) pair."""
        ...


class UserPages(Protocol):
    async def page(self, tenant_id: str, after: tuple[datetime, str] | None,
                   limit: int) -> builtins.list[UserRecord]:
        """In (created_at, user_id) order."""
        ...
