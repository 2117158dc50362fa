"""Verifying a replay bundle offline (``vanta replay verify BUNDLE``): nothing but the
archive, the package and, optionally, the public key the auditor trusts.

Checks, each failure named: the archive and its format version; the manifest's signature
(with the pinned key, or else the key the bundle names, which only shows the bundle is
self-consistent); every listed file present, unaltered (a changed line is named with its
byte range) and nothing unlisted; every audit event's hash; every batch audit record against
the Merkle root of its event (its inclusion proof); the sizing inputs against what
the audit log recorded for the order; and every child recomputed byte for byte with the pure
domain, under the sizing version the order was sized with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from vanta.application.export_formats import event_from_json
from vanta.application.ports.signing import SignatureVerifier, key_id_of
from vanta.application.replay_routes import check_routes, unrouted
from vanta.domain.audit import AuditEvent, hash_of
from vanta.domain.audit_batch import BATCH_ACTION, proves
from vanta.domain.errors import DomainError
from vanta.domain.followers import FollowerSpec
from vanta.domain.ids import ManagerOrderId, VaultId
from vanta.domain.mirroring import Snapshot, expand
from vanta.domain.money import Instrument
from vanta.domain.orders import ChildOrderState, ManagerOrder, Side, TimeInForce
from vanta.domain.replay_bundle import (
    BUNDLE_FORMAT,
    CHILDREN,
    MANIFEST,
    RECORDS,
    SIGNATURE,
    BundleInvalid,
    changed_lines,
    first_difference,
    recomputed_children,
    unpack,
)
from vanta.domain.routing import NO_FEASIBLE_ROUTE

__all__ = ["BundleReport", "verify_bundle"]


@dataclass
class BundleReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mo_id: str | None = None
    children: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _json(files: Mapping[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name])
    except KeyError:
        raise BundleInvalid(f"missing file {name}") from None
    except ValueError:
        raise BundleInvalid(f"{name} is not valid JSON") from None


def verify_bundle(data: bytes, verifier: SignatureVerifier,
                  public_key: bytes | None = None) -> BundleReport:
    report = BundleReport()
    try:
        files = unpack(data)
        manifest = _json(files, MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            fmt = manifest.get("format") if isinstance(manifest, dict) else None
            raise BundleInvalid(f"unknown bundle format version {fmt!r} (this verifier "
                                f"reads {BUNDLE_FORMAT})")
        report.mo_id = manifest.get("mo_id")
        _signature(files, manifest, verifier, public_key, report)
        _files(files, manifest, report)
    except BundleInvalid as e:
        report.problems.append(str(e))
        return report
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        report.problems.append(f"manifest.json is malformed ({type(e).__name__}: {e})")
        return report
    for step in (_audit, _records, _recompute, _routes):
        try:
            step(files, report)
        except BundleInvalid as e:
            report.problems.append(str(e))
        except (DomainError, ValueError, KeyError, TypeError, AttributeError) as e:
            report.problems.append(f"{step.__name__.strip('_')}: the inputs cannot be read "
                                   f"({type(e).__name__}: {e})")
    return report


def _signature(files: Mapping[str, bytes], manifest: Mapping[str, Any],
               verifier: SignatureVerifier, pinned: bytes | None, report: BundleReport) -> None:
    sig = _json(files, SIGNATURE)
    try:
        signature = base64.b64decode(sig["signature"], validate=True)
        own = base64.b64decode(sig["public_key"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise BundleInvalid("manifest.sig is malformed (signature or public_key missing or "
                            "not base64)") from None
    key = pinned if pinned is not None else own
    signed_by = (manifest.get("signing") or {}).get("key_id")
    if pinned is None:
        report.notes.append(f"checked with the key the bundle names ({key_id_of(own)}); pass "
                            "--public-key to check it against the platform's published key")
    elif signed_by != key_id_of(pinned):
        report.problems.append(f"wrong signature: the bundle says it was signed by key "
                               f"{signed_by}, not the pinned key {key_id_of(pinned)}")
        return
    if not verifier.verify(key, files[MANIFEST], signature):
        report.problems.append(f"wrong signature: the manifest's signature does not verify "
                               f"with key {key_id_of(key)}")


def _files(files: Mapping[str, bytes], manifest: Mapping[str, Any],
           report: BundleReport) -> None:
    listed: Mapping[str, Any] = manifest.get("files") or {}
    for name in sorted(listed):
        entry = listed[name]
        if name not in files:
            report.problems.append(f"missing file {name}")
            continue
        if hashlib.sha256(files[name]).hexdigest() == entry.get("sha256"):
            continue
        where = [f"line {n} (bytes {a}-{b})"
                 for n, a, b in changed_lines(files[name], entry.get("lines") or [])][:5]
        report.problems.append(f"{name} was altered: its sha256 is not the manifest's; "
                               f"changed: {', '.join(where) or 'its length'}")
    for name in sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE}):
        report.problems.append(f"file {name} is not in the manifest")


def _events(files: Mapping[str, bytes]) -> list[AuditEvent]:
    raw = files.get("outputs/audit_events.jsonl")
    if raw is None:
        raise BundleInvalid("missing file outputs/audit_events.jsonl")
    try:
        return [event_from_json(json.loads(line)) for line in raw.splitlines() if line]
    except (ValueError, KeyError, TypeError):
        raise BundleInvalid("outputs/audit_events.jsonl is not valid JSON lines") from None


def _audit(files: Mapping[str, bytes], report: BundleReport) -> None:
    events = _events(files)
    for e in events:
        if hash_of(e) != e.hash:
            report.problems.append(f"audit event #{e.seq} ({e.action}) does not match its "
                                   "hash")
    received = next((e for e in events if e.entity == "manager_order"
                     and e.action == "received"), None)
    if received is None:
        report.problems.append("the order's 'received' audit event is missing")
        return
    snapshot = _json(files, "inputs/sizing_snapshot.json")
    if received.payload.get("snapshot") != snapshot:
        report.problems.append(f"inputs/sizing_snapshot.json is not the snapshot the audit "
                               f"log recorded for the order (event #{received.seq})")
    created = {e.entity_id: e for e in events if e.action.startswith("created:")}
    for line in files.get(CHILDREN, b"").splitlines():
        c = json.loads(line)
        ev = created.get(c["fo_id"])
        if ev is None:
            report.problems.append(f"child {c['fo_id']} has no 'created' audit event")
        elif Decimal(str(ev.payload.get("qty"))) != Decimal(c["qty"]) or \
                ev.payload.get("sizing") != c["sizing"]:
            report.problems.append(f"child {c['fo_id']}: {CHILDREN} differs from its audit "
                                   f"event #{ev.seq}")


def _records(files: Mapping[str, bytes], report: BundleReport) -> None:
    """Each batch record against the root of its event (whose hash ``_audit`` checked)."""
    raw = files.get(RECORDS)
    if raw is None:
        report.notes.append(f"no {RECORDS}: the bundle has no batch audit records")
        return
    batches = {e.event_id: e for e in _events(files) if e.action == BATCH_ACTION}
    children = {json.loads(line)["fo_id"] for line in files.get(CHILDREN, b"").splitlines()}
    for n, line in enumerate(raw.splitlines(), 1):
        try:
            r = json.loads(line)
            ev = batches.get(r["event_id"])
            fo_id = json.loads(r["record"])["entity_id"]
            size = int(r["tree_size"])
            ok = ev is not None and size == ev.payload.get("size") and proves(
                r["record"], int(r["leaf_index"]), size, r["audit_path"],
                str(ev.payload.get("root")))
        except (ValueError, KeyError, TypeError):
            report.problems.append(f"{RECORDS} line {n} is not a valid record")
            continue
        if ev is None:
            report.problems.append(f"{RECORDS} line {n}: its batch event is not in the bundle")
        elif not ok:
            report.problems.append(f"{RECORDS} line {n} ({fo_id}) is not proved by the Merkle "
                                   f"root of event #{ev.seq}: the record was altered")
        elif fo_id not in children:
            report.problems.append(f"{RECORDS} line {n} is about {fo_id}, not a child of the "
                                   "order")


def _routes(files: Mapping[str, bytes], report: BundleReport) -> None:
    check_routes(files, _events(files), report.problems, report.notes)


def _order(d: Mapping[str, Any]) -> ManagerOrder:
    return ManagerOrder(
        mo_id=ManagerOrderId(d["mo_id"]), vault_id=VaultId(d["vault_id"]),
        client_order_id=d["client_order_id"], symbol=d["symbol"], venue=d["venue"],
        side=Side(d["side"]), qty=Decimal(d["qty"]), tif=TimeInForce(d["tif"]),
        ref_price=None if d["ref_price"] is None else Decimal(d["ref_price"]),
        closes_position=bool(d["closes_position"]), meta=dict(d["meta"]))


def _recompute(files: Mapping[str, bytes], report: BundleReport) -> None:
    order = _order(_json(files, "inputs/manager_order.json"))
    specs = [FollowerSpec.from_json(f) for f in _json(files, "inputs/followers.json")]
    rule = _json(files, "inputs/instrument.json")["rule"]
    snapshot = Snapshot.from_json(_json(files, "inputs/sizing_snapshot.json"))
    expansion = expand(order, specs, Instrument.from_json(rule), snapshot)
    skipped = unrouted(files)  # the router found no way to execute these: skipped
    expansion = replace(expansion, children=tuple(
        c._replace(state=ChildOrderState.SKIPPED, skip_reason=NO_FEASIBLE_ROUTE)
        if c.fo_id in skipped else c for c in expansion.children))
    recorded = files.get(CHILDREN)
    if recorded is None:
        raise BundleInvalid(f"missing file {CHILDREN}")
    report.children = len(expansion.children)
    diff = first_difference(recorded, recomputed_children(expansion.children))
    if diff is not None:
        report.problems.append(f"recomputed children differ: {diff}")
    else:
        report.notes.append(f"{len(expansion.children)} children recomputed byte for byte "
                            f"(sizing version {snapshot.sizing_version})")
