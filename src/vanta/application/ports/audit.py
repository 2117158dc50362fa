"""The hash-chained audit log's repository (one unit of work's view of it)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from vanta.application.ports.records_orders import AuditEventRecord, AuditLeafRecord
from vanta.domain.audit import AuditEvent

__all__ = ["AuditRepo"]


class AuditRepo(Protocol):
    async def append(self, *, entity: str, entity_id: str, action: str, actor: str,
                     payload: Mapping[str, Any], tenant_id: str | None) -> AuditEvent:
        """Append one event to the hash chain (appenders are serialized)."""
        ...

    async def append_many(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Several events in one round of statements (the request log's batches)."""
        ...

    async def append_batch(self, records: Sequence[Mapping[str, Any]], *, actor: str) -> None:
        """Per-child records (entity, entity_id, action, payload, tenant_id) as one chained
        ``dispatch:batch`` event per tenant among them, carrying the Merkle root over that
        tenant's records, which are stored as its leaves."""
        ...

    async def leaves_for(self, tenant_id: str, entity_ids: Sequence[str]
                         ) -> builtins.list[AuditLeafRecord]:
        """The tenant's batch records about any of ``entity_ids``, in chain order."""
        ...

    async def leaves_of(self, event_ids: Sequence[str]
                        ) -> dict[str, builtins.list[AuditLeafRecord]]:
        """Every record under each of these batch events, in leaf order."""
        ...

    async def by_ids(self, event_ids: Sequence[str]) -> dict[str, AuditEventRecord]:
        """These events, by event id (unknown ids are left out)."""
        ...

    async def all_leaves(self) -> dict[str, builtins.list[AuditLeafRecord]]:
        """Every batch event's records, in leaf order (what ``audit-verify`` checks)."""
        ...

    async def all(self) -> builtins.list[AuditEvent]: ...

    async def head(self) -> tuple[int, str] | None:
        """The recorded head row (seq and hash of the last event), None before any event."""
        ...

    async def since(self, seq: int) -> builtins.list[AuditEvent]:
        """Events from ``seq`` on (inclusive), in chain order."""
        ...

    async def feed(self, tenant_id: str, after_seq: int, entities: Sequence[str],
                   limit: int) -> builtins.list[AuditEventRecord]:
        """The tenant's events after ``after_seq``, in log order: a resumable stream."""
        ...

    async def for_entity(self, tenant_id: str, entity_id: str
                         ) -> builtins.list[AuditEventRecord]: ...

    async def for_entities(self, tenant_id: str, entity_ids: Sequence[str]
                           ) -> builtins.list[AuditEventRecord]:
        """The tenant's events about any of ``entity_ids``, in chain order."""
        ...
