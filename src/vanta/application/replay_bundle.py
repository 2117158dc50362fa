"""Exporting a manager order's replay bundle (``vanta replay export``,
``GET /v1/manager-orders/{id}/replay-bundle``): gather its inputs and outputs, sign the
manifest, and write the archive to the object store under an immutable, content-addressed
key (``replay/<tenant>/<mo_id>/<sha256>.tar``). The format is
:mod:`vanta.domain.replay_bundle`; verification is :mod:`vanta.application.replay_verify`.

Everything in it is as of the order (the stored sizing snapshot, overlays active then, NAV
reports up to then) except the plan entitlements, which are kept only as they are now: the
bundle says so (``as_of: "export"``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vanta.application.export_formats import event_json
from vanta.application.ports.clock import iso
from vanta.application.ports.objectstore import ObjectRef, ObjectStore
from vanta.application.ports.records_orders import (
    AuditEventRecord,
    ChildOrderRecord,
    ManagerOrderRecord,
)
from vanta.application.ports.signing import Signer
from vanta.application.ports.uow import UnitOfWork
from vanta.application.replay_routes import route_files
from vanta.domain.audit_batch import proofs
from vanta.domain.errors import NotFound
from vanta.domain.ids import dag_id_for
from vanta.domain.mirroring import UNVERSIONED
from vanta.domain.replay_bundle import (
    BUNDLE_FORMAT,
    CHILDREN,
    MANIFEST,
    RECORDS,
    SIGNATURE,
    children_jsonl,
    dec,
    file_entry,
    json_bytes,
    json_doc,
    pack,
)

__all__ = ["Bundle", "build_bundle", "order_json", "store_bundle"]

MAX_CHILDREN = 1_000_000
TAR = "application/x-tar"


@dataclass(frozen=True)
class Bundle:
    tenant_id: str
    mo_id: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> str:
        return f"replay/{self.tenant_id}/{self.mo_id}/{self.sha256}.tar"


def order_json(mo: ManagerOrderRecord) -> dict[str, Any]:
    return {"mo_id": mo.mo_id, "tenant_id": mo.tenant_id, "vault_id": mo.vault_id,
            "client_order_id": mo.client_order_id, "source": mo.source, "symbol": mo.symbol,
            "venue": mo.venue, "side": mo.side.value, "qty": dec(mo.qty), "tif": mo.tif.value,
            "ref_price": dec(mo.ref_price), "closes_position": mo.closes_position,
            "meta": dict(mo.meta or {}), "state": mo.state.value,
            "created_at": iso(mo.created_at)}


def _plain(value: Any) -> Any:
    """Records as JSON values: times in one format, decimals without exponents."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    return str(dec(value)) if hasattr(value, "as_tuple") else str(value)


def _sizing(c: ChildOrderRecord) -> dict[str, Any]:
    return {"fo_id": c.fo_id, "follower_id": c.follower_id, "symbol": c.symbol,
            "venue": c.venue, "side": c.side.value, "qty": c.qty,
            "cap_applied": c.cap_applied, "skip_reason": c.skip_reason,
            "sizing": (c.audit or {}).get("sizing") or {}}


def _state(c: ChildOrderRecord) -> dict[str, Any]:
    return {"fo_id": c.fo_id, "state": c.state.value, "broker_order_ref": c.broker_order_ref,
            "dispatch_attempts": c.dispatch_attempts, "last_error": c.last_error,
            "filled_qty": dec(c.filled_qty), "avg_fill_price": dec(c.avg_fill_price),
            "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
            "dead_lettered_at": None if c.dead_lettered_at is None
            else iso(c.dead_lettered_at)}


async def _gather(uow: UnitOfWork, tenant_id: str, mo_id: str) -> dict[str, bytes]:
    async with uow:
        mo = await uow.manager_orders.get(tenant_id, mo_id)
        if mo is None:
            raise NotFound(f"manager order {mo_id} not found", code="manager_order_not_found")
        children = sorted(await uow.child_orders.list(
            tenant_id, follower_id=None, mo_id=mo_id, since=None, limit=MAX_CHILDREN),
            key=lambda c: c.fo_id)
        fo_ids = [c.fo_id for c in children]
        by_child = await uow.attempts.list_many(fo_ids)
        attempts = [a for fo in fo_ids for a in by_child.get(fo, ())]
        fills_of = await uow.fills.for_children(fo_ids)
        fills = [f for fo in fo_ids for f in fills_of.get(fo, ())]
        legs_of = await uow.legs.for_children(fo_ids)
        legs = [g for fo in fo_ids for g in legs_of.get(fo, ())]
        events = await uow.audit.for_entities(tenant_id, [mo_id, *fo_ids,
                                                          *(g.leg_id for g in legs)])
        records, batch_events = await _batch_records(uow, tenant_id, fo_ids)
        events = sorted([*events, *batch_events], key=lambda e: e.seq)
        overlays = await uow.overlays.active(mo.vault_id, mo.created_at)
        snap: Mapping[str, Any] = mo.snapshot or {}
        followers = list(snap.get("followers") or [])
        navs = {"vault": await uow.navs.history("vault", [mo.vault_id], mo.created_at),
                "follower": await uow.navs.history(
                    "follower", [str(f["follower_id"]) for f in followers], mo.created_at)}
        sub = await uow.subscriptions.current(tenant_id)
    sizing = {k: v for k, v in snap.items()
              if k not in ("followers", "instrument", "instrument_source")}
    return {
        "inputs/manager_order.json": json_doc(order_json(mo)),
        "inputs/sizing_snapshot.json": json_doc(sizing),
        "inputs/followers.json": json_doc(followers),
        "inputs/instrument.json": json_doc({"rule": snap.get("instrument"),
                                              "source": snap.get("instrument_source")}),
        "inputs/overlays.json": json_doc(_plain(overlays)),
        "inputs/nav_observations.json": json_doc(_plain(navs)),
        "inputs/entitlements.json": json_doc({"as_of": "export", "subscription": _plain(
            {"plan_id": sub.plan_id, "status": sub.status, "entitlements": sub.entitlements}
            if sub else None)}),
        CHILDREN: children_jsonl(_sizing(c) for c in children),
        "outputs/child_states.json": json_doc([_state(c) for c in children]),
        "outputs/attempts.json": json_doc(_plain(attempts)),
        "outputs/fills.json": json_doc(_plain(fills)),
        "outputs/audit_events.jsonl": b"".join(json_bytes(event_json(e.event()))
                                               for e in events),
        RECORDS: b"".join(json_bytes(r) for r in records),
        **route_files([e.event() for e in events], legs),
    }


async def _batch_records(uow: UnitOfWork, tenant_id: str, fo_ids: list[str]
                         ) -> tuple[list[dict[str, Any]], list[AuditEventRecord]]:
    """The children's records settled in batch events, each with its inclusion proof (the
    event, in ``audit_events.jsonl``, carries the root), and those events."""
    leaves = await uow.audit.leaves_for(tenant_id, fo_ids)
    event_ids = sorted({lf.event_id for lf in leaves})
    batches = await uow.audit.leaves_of(event_ids)
    paths = {e: proofs([b.record for b in batch]) for e, batch in batches.items()}
    proved = [{"event_id": lf.event_id, "seq": lf.seq, "leaf_index": lf.idx,
               "tree_size": len(batches[lf.event_id]), "record": lf.record,
               "audit_path": paths[lf.event_id][lf.idx]}
              for lf in leaves]
    return proved, list((await uow.audit.by_ids(event_ids)).values())


async def build_bundle(uow: UnitOfWork, tenant_id: str, mo_id: str, *, signer: Signer,
                       code_version: Mapping[str, str]) -> Bundle:
    """The signed archive of one order; another tenant's order is NotFound."""
    files = await _gather(uow, tenant_id, mo_id)
    snapshot = files["inputs/sizing_snapshot.json"]
    files["inputs/code_version.json"] = json_doc({
        **code_version, "bundle_format": BUNDLE_FORMAT,
        "sizing_version": _sizing_version(snapshot)})
    manifest = json_doc({
        "format": BUNDLE_FORMAT, "mo_id": mo_id, "tenant_id": tenant_id,
        "dag_id": dag_id_for(mo_id),
        "signing": {"algorithm": signer.algorithm, "key_id": signer.key_id},
        "files": {name: file_entry(data) for name, data in sorted(files.items())}})
    signature = json_doc({
        "algorithm": signer.algorithm, "key_id": signer.key_id,
        "public_key": base64.b64encode(signer.public_key()).decode(),
        "signature": base64.b64encode(signer.sign(manifest)).decode()})
    return Bundle(tenant_id, mo_id, pack({**files, MANIFEST: manifest, SIGNATURE: signature}))


def _sizing_version(snapshot: bytes) -> int:
    return int(json.loads(snapshot).get("sizing_version", UNVERSIONED))


async def store_bundle(store: ObjectStore, bundle: Bundle) -> ObjectRef:
    """Write once; the same bundle again is a no-op, other bytes under its key are refused
    (``ObjectExists``): the key is the archive's own sha256."""
    return await store.put(bundle.key, bundle.data, content_type=TAR,
                           metadata={"kind": "replay-bundle", "mo-id": bundle.mo_id})
