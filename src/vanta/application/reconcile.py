"""Running a reconciliation of one vault: read, plan (``domain.reconciliation``), and, unless
it is a dry run, dispatch the fix-ups through the normal outbox.

Each fix-up becomes a one-follower order of source ``reconcile`` (client order id
``sync:reconcile:<run>:<follower>:<symbol>``, so a client can never send one and the
manager's own holdings leave it out) with one child, written with its outbox row and audit
events in the run's transaction. The child carries ``reason: reconcile`` and the run id in
its sizing record and the follower's webhook body (``meta.source``). The stored snapshot sizes
the child exactly again on replay (scale 1, the fix-up's quantity, what was held).

The manager's position snapshot is derived from the manager's own orders (every order of the
vault except syncs and fix-ups), each symbol at its last reference price; the manager's NAV is
the vault's latest NAV report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from vanta.application import observability, tracing
from vanta.application.clock import Clock, utcnow
from vanta.application.manager_orders import DISPATCH_TOPIC
from vanta.application.ports.brokers import BrokerGateways
from vanta.application.ports.reconciliation import (
    NoReconcileMetrics,
    ReconcileMetrics,
    ReconcileUnitOfWork,
    ReconcileUowFactory,
)
from vanta.application.reconcile_books import (
    Progress,
    broker_views,
    follower_books,
    read_vault_book,
)
from vanta.application.reconcile_report import plan_report
from vanta.domain.errors import NotFound
from vanta.domain.followers import FollowerSpec, Protections, ScaleMode
from vanta.domain.ids import FollowerId, VaultId, child_order_ids, manager_order_id, new_id
from vanta.domain.mirroring import Snapshot, ensure_vault_accepts_orders
from vanta.domain.money import Instrument
from vanta.domain.orders import ChildOrder, ChildOrderState, ManagerOrder, TimeInForce
from vanta.domain.reconciliation import (
    DEFAULT_STALE_AFTER,
    DEFAULT_THRESHOLD_BPS,
    Book,
    FixUp,
    Plan,
    plan,
)

REASON = "reconcile"


@dataclass(frozen=True)
class ReconcileSettings:
    default_threshold_bps: int = DEFAULT_THRESHOLD_BPS
    stale_after: timedelta = DEFAULT_STALE_AFTER


async def reconcile_vault(
    uow_factory: ReconcileUowFactory, brokers: BrokerGateways | None, *, tenant_id: str,
    vault_id: str, dry_run: bool = True, actor: str, clock: Clock = utcnow,
    settings: ReconcileSettings = ReconcileSettings(),
    metrics: ReconcileMetrics = NoReconcileMetrics(), progress: Progress | None = None,
) -> dict[str, Any]:
    """Run once; the stored report (as ``GET /v1/reconciliations/{id}`` returns it).
    A vault in maintenance is refused before anything is read from a broker or written.

    Brokers are read outside any transaction; the plan is then made inside the writing
    transaction, with the vault row locked, from the database as it is at that moment: a
    fix-up planned by a concurrent run (or a child created meanwhile) is in flight by then,
    so two runs never order the same drift twice."""
    now = clock()
    reader = uow_factory()
    async with reader:
        vb = await read_vault_book(reader, tenant_id=tenant_id, vault_id=vault_id, now=now)
    ensure_vault_accepts_orders(vb.vault.maintenance)
    views = await broker_views(vb, brokers, progress)
    run_id = f"rc_{new_id()}"
    uow = uow_factory()
    async with uow:
        vault = await uow.vaults.get_for_update(tenant_id, vault_id)
        if vault is None:
            raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
        ensure_vault_accepts_orders(vault.maintenance)  # it may have changed since the read
        vb = await read_vault_book(uow, tenant_id=tenant_id, vault_id=vault_id, now=now)
        books = follower_books(vb, views, now=now,
                               default_threshold=settings.default_threshold_bps)
        the_plan = plan(vb.holdings, books, vb.instruments, manager_nav=vb.manager_nav,
                        now=now, stale_after=settings.stale_after)
        report = plan_report(the_plan, books, run_id=run_id, vault_id=vault_id,
                             dry_run=dry_run, created_at=now, manager_nav=vb.manager_nav)
        created: list[ChildOrder] = []
        if not dry_run:
            specs = {b.spec.follower_id: b for b in books}
            for i, fix in enumerate(the_plan.fixups):
                fo_id = await _store_fixup(uow, tenant_id=tenant_id, vault_id=vault_id,
                                           run_id=run_id, fix=fix, book=specs[fix.follower_id],
                                           instrument=vb.instruments[fix.manager_symbol],
                                           now=now, created=created)
                report["fixups"][i]["fo_id"] = fo_id
        await uow.reconciliations.add_run({
            "run_id": run_id, "tenant_id": tenant_id, "vault_id": vault_id,
            "dry_run": dry_run, "actor": actor, "created_at": now, "report": report})
        await uow.audit.append_many(_run_events(report, tenant_id=tenant_id, actor=actor))
        await uow.commit()
    # once committed: the trade log's lines of the fix-up children
    observability.children_created(observability.journal(), created, tenant_id=tenant_id,
                                   vault_id=vault_id,
                                   traceparent=tracing.current().traceparent())
    metrics.record_reconcile(vault_id, float(report["max_drift_bps"] or 0),
                             0 if dry_run else len(the_plan.fixups), len(the_plan.blocked))
    return report


def _run_events(report: dict[str, Any], *, tenant_id: str, actor: str) -> list[dict[str, Any]]:
    run_id = report["id"]
    events: list[dict[str, Any]] = [{
        "entity": "reconciliation", "entity_id": run_id, "action": "run", "actor": actor,
        "tenant_id": tenant_id,
        "payload": {"vault_id": report["vault_id"], "dry_run": report["dry_run"],
                    "summary": report["summary"], "findings": report["findings"]}}]
    verb = "planned" if report["dry_run"] else "dispatched"
    events += [{"entity": "reconciliation", "entity_id": run_id, "action": f"fixup:{verb}",
                "actor": actor, "tenant_id": tenant_id, "payload": f}
               for f in report["fixups"]]
    events += [{"entity": "reconciliation", "entity_id": run_id, "action": "fixup:blocked",
                "actor": actor, "tenant_id": tenant_id, "payload": b}
               for b in report["blocked"]]
    return events


def _replay_spec(spec: FollowerSpec) -> FollowerSpec:
    """Sizing rules under which the stored order sizes to exactly the fix-up again."""
    return dataclasses.replace(
        spec, scale=Decimal(1), scale_mode=ScaleMode.FIXED, max_pos_usd=None,
        kill_switch=False, paused=False,
        protections=Protections(symbol_map=dict(spec.protections.symbol_map)))


async def _store_fixup(uow: ReconcileUnitOfWork, *, tenant_id: str, vault_id: str,
                       run_id: str, fix: FixUp, book: Book, instrument: Instrument,
                       now: Any, created: list[ChildOrder]) -> str:
    coid = f"sync:reconcile:{run_id}:{fix.follower_id}:{fix.symbol}"
    mo_id = manager_order_id(vault_id, coid)
    link = {"reason": REASON, "reconcile_run": run_id}
    order = ManagerOrder(mo_id=mo_id, vault_id=VaultId(vault_id), client_order_id=coid,
                         symbol=fix.manager_symbol, venue=fix.venue, side=fix.side,
                         qty=fix.qty, tif=TimeInForce.DAY, ref_price=fix.price,
                         meta={"sync_for": fix.follower_id, **link, "meta": link})
    spec = _replay_spec(book.spec)
    held = book.positions.get(fix.symbol, Decimal(0)) + book.pending.get(fix.symbol, Decimal(0))
    snap = Snapshot(price=fix.price, positions={FollowerId(fix.follower_id): held})
    await uow.manager_orders.add({
        "mo_id": mo_id, "tenant_id": tenant_id, "vault_id": vault_id,
        "client_order_id": coid, "source": REASON, "symbol": order.symbol,
        "venue": order.venue, "side": order.side.value, "qty": order.qty,
        "tif": order.tif.value, "ref_price": order.ref_price, "closes_position": False,
        "meta": order.meta,
        "snapshot": {**snap.to_json(), "followers": [spec.to_json()],
                     "instrument": instrument.to_json(), "instrument_source": REASON},
        "state": "expanded", "created_at": now})
    fo_id = child_order_ids(mo_id)(fix.follower_id)
    child = ChildOrder(fo_id=fo_id, mo_id=mo_id, follower_id=FollowerId(fix.follower_id),
                       symbol=fix.symbol, venue=fix.venue, side=fix.side, qty=fix.qty,
                       cap_applied=fix.cap_applied, state=ChildOrderState.PENDING,
                       skip_reason=None, sizing={**link, "fixup": "true"})
    await uow.child_orders.add_many([child], tenant_id=tenant_id, vault_id=vault_id, now=now)
    tp = tracing.current().traceparent()  # the run's trace, which the delivery joins
    await uow.outbox.add_many(DISPATCH_TOPIC, [(fo_id, {"fo_id": fo_id} if tp is None
                                                else {"fo_id": fo_id, "traceparent": tp})],
                              now)
    await uow.audit.append_many([
        {"entity": "manager_order", "entity_id": mo_id, "action": "received",
         "actor": "reconciler", "tenant_id": tenant_id,
         "payload": {"source": REASON, "client_order_id": coid, "symbol": order.symbol,
                     "side": order.side.value, "qty": str(order.qty), "reconcile_run": run_id}},
        {"entity": "follower_order", "entity_id": fo_id, "action": "created:pending",
         "actor": "reconciler", "tenant_id": tenant_id,
         "payload": {"mo_id": mo_id, "follower_id": fix.follower_id, "symbol": fix.symbol,
                     "qty": str(fix.qty), "cap_applied": fix.cap_applied,
                     "skip_reason": None, "sizing": child.sizing}}])
    created.append(child)
    return fo_id


async def get_reconciliation(uow: ReconcileUnitOfWork, *, tenant_id: str,
                             run_id: str) -> dict[str, Any]:
    async with uow:
        run = await uow.reconciliations.get_run(tenant_id, run_id)
    if run is None:
        raise NotFound(f"reconciliation {run_id} not found", code="reconciliation_not_found")
    return dict(run.report)


__all__ = ["REASON", "Plan", "ReconcileSettings", "get_reconciliation", "reconcile_vault"]
