"""A child's batch audit records, each with its inclusion proof against the root that a
chained event carries: what an auditor or a follower checks one record with, offline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vanta.application.export_formats import event_json
from vanta.application.ports.records_orders import AuditEventRecord, AuditLeafRecord
from vanta.application.ports.uow import UnitOfWork
from vanta.domain import audit_batch
from vanta.domain.merkle import ALGORITHM


def proof_json(leaf: AuditLeafRecord, batch: Sequence[AuditLeafRecord],
               event: AuditEventRecord) -> dict[str, Any]:
    """One record with its audit path; ``record`` is the exact text the leaf hash covers
    (``SHA-256(0x00 || utf-8 record)``)."""
    records = [lf.record for lf in batch]
    return {"algorithm": ALGORITHM, "record": leaf.record, "fields": json.loads(leaf.record),
            "leaf_index": leaf.idx, "tree_size": len(records),
            "leaf_hash": leaf.leaf_hash(),
            "audit_path": audit_batch.proof(leaf.idx, records),
            "root": event.payload.get("root"), "event": event_json(event.event())}


async def proofs_for(uow: UnitOfWork, tenant_id: str, entity_ids: Sequence[str]
                     ) -> list[dict[str, Any]]:
    """Every batch record of the tenant's ``entity_ids``, in chain order, with its proof and
    the chained event that carries its root."""
    leaves = await uow.audit.leaves_for(tenant_id, entity_ids)
    event_ids = sorted({lf.event_id for lf in leaves})
    batches = await uow.audit.leaves_of(event_ids)
    events = await uow.audit.by_ids(event_ids)
    return [proof_json(lf, batches[lf.event_id], events[lf.event_id]) for lf in leaves]


def check_proof(doc: Any) -> str | None:
    """Why a proof document (as ``proof_json`` writes it) does not prove its record under
    its event's root, or None when it does. The event's own hash is checked against the
    chain separately (its ``hash`` is what the chain and the anchors vouch for)."""
    try:
        event, record = doc["event"], doc["record"]
        root = event["payload"]["root"]
        ok = event["action"] == audit_batch.BATCH_ACTION and audit_batch.proves(
            record, int(doc["leaf_index"]), int(doc["tree_size"]), doc["audit_path"], root)
        size_ok = int(doc["tree_size"]) == int(event["payload"]["size"])
    except (KeyError, TypeError, ValueError):
        return "not a proof document"
    if not size_ok:
        return f"the proof's tree size is not the size event #{event['seq']} records"
    return None if ok else (f"record {doc['leaf_index']} is not proved by the root of event "
                            f"#{event['seq']}: the record or its path was altered")
