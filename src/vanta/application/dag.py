"""The DAG of one manager order, gathered from the stored rows and shaped by
:mod:`vanta.domain.dag`: the one service behind both ``GET /v1/manager-orders/{id}/dag`` and
the web app's drawing of an order. Its ``dag_id`` is derived from the order's id
(``vanta.domain.ids.dag_id_for``), the same one every webhook body carries.

Children come in keyset pages over (created_at, fo_id), the order the children list uses:
a page reads only its own children's attempts, fills and audit events, so an order with
10,000 children costs a page's worth of rows, not the whole order's. Every page holds the
order's node and its audit events, so each one is a graph whose edges all resolve.

Audit events appear with their seq, action, actor, time and chain hashes, not their
payloads: a payload may hold other followers' inputs, and the DAG is for seeing what
happened, the replay bundle for checking it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from vanta.application.ports.clock import iso
from vanta.application.ports.legs import LegRecord
from vanta.application.ports.records_orders import (
    AttemptRecord,
    AuditEventRecord,
    AuditLeafRecord,
    ChildOrderRecord,
    FillRecord,
    ManagerOrderRecord,
)
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.dag import (
    ChildFacts,
    Dag,
    DagNode,
    build_dag,
    child_node_id,
    mo_node_id,
    rail_leg_node_id,
)
from vanta.domain.errors import NotFound

__all__ = ["DagPage", "order_dag"]

ALL_CHILDREN = 1_000_000  # limit=None: the whole order (the CLI, benches, small orders)


@dataclass(frozen=True, slots=True)
class DagPage:
    dag: Dag
    children: int  # child orders on this page
    next_after: tuple[datetime, str] | None  # (created_at, fo_id) to continue after, if more


def _t(ts: datetime | None) -> str | None:
    return None if ts is None else iso(ts)


def _s(v: object) -> str | None:
    return None if v is None else str(v)


def _order_node(mo: ManagerOrderRecord) -> DagNode:
    return DagNode(mo_node_id(mo.mo_id), "manager_order", mo.state.value,
                   {"created_at": _t(mo.created_at)},
                   {"vault_id": mo.vault_id, "client_order_id": mo.client_order_id,
                    "source": mo.source, "symbol": mo.symbol, "venue": mo.venue,
                    "side": mo.side.value, "qty": str(mo.qty)})


def _child_node(c: ChildOrderRecord) -> DagNode:
    return DagNode(child_node_id(c.fo_id), "child_order", c.state.value,
                   {"created_at": _t(c.created_at), "updated_at": _t(c.updated_at),
                    "dead_lettered_at": _t(c.dead_lettered_at)},
                   {"follower_id": c.follower_id, "symbol": c.symbol, "side": c.side.value,
                    "qty": str(c.qty), "cap_applied": c.cap_applied,
                    "skip_reason": c.skip_reason, "dispatch_attempts": c.dispatch_attempts,
                    "filled_qty": str(c.filled_qty), "avg_fill_price": _s(c.avg_fill_price)})


def _attempt_node(a: AttemptRecord) -> DagNode:
    return DagNode(f"attempt:{a.fo_id}:{a.attempt_no}", "attempt", a.outcome,
                   {"started_at": _t(a.started_at)},
                   {"attempt_no": a.attempt_no, "status_code": a.status_code,
                    "latency_ms": a.latency_ms, "error": a.error})


def _fill_node(f: FillRecord) -> DagNode:
    return DagNode(f"fill:{f.trade_id}", "fill", "filled",
                   {"ts": _t(f.ts), "recorded_at": _t(f.recorded_at)},
                   {"trade_id": f.trade_id, "qty": str(f.qty), "price": str(f.price)})


def _rail_leg_node(g: LegRecord) -> DagNode:
    return DagNode(rail_leg_node_id(g.leg_id), "rail_leg", g.state,
                   {"updated_at": _t(g.updated_at)},
                   {"leg_id": g.leg_id, "index": g.idx, "kind": g.kind, "venue": g.venue,
                    "pair": g.pair, "side": g.side, "amount": str(g.amount),
                    "filled": str(g.filled), "after": g.after_idx, "attempts": g.attempts,
                    "reason": g.reason})


def _audit_node(e: AuditEventRecord) -> DagNode:
    return DagNode(f"audit:{e.seq}", "audit_event", e.action, {"ts": e.ts},
                   {"seq": e.seq, "entity": e.entity, "actor": e.actor,
                    "prev_hash": e.prev_hash, "hash": e.hash})


def _leaf_node(lf: AuditLeafRecord) -> DagNode:
    leaf = lf.leaf()
    return DagNode(f"audit:{lf.seq}.{lf.idx}", "audit_event", lf.action, {"ts": leaf.ts},
                   {"seq": lf.seq, "leaf": lf.idx, "batch_event": lf.event_id,
                    "entity": leaf.entity, "actor": leaf.actor,
                    "leaf_hash": lf.leaf_hash()})


async def order_dag(uow: UnitOfWork, tenant_id: str, mo_id: str, *,
                    limit: int | None = None, after: tuple[datetime, str] | None = None,
                    follower_id: str | None = None,
                    vault_ids: Iterable[str] | None = None) -> DagPage:
    """The order's DAG with at most ``limit`` children (all when None) after the keyset
    ``after``. ``follower_id`` and ``vault_ids`` narrow the children (and so their attempts,
    fills and events) exactly as they narrow the order's children list; the caller decides
    whether it may see the order itself. Another tenant's order is NotFound."""
    cap = ALL_CHILDREN if limit is None else limit
    async with uow:
        # without its snapshot: every follower's inputs, megabytes for a large order
        mo = (await uow.manager_orders.get_many_unscoped([mo_id])).get(mo_id)
        if mo is None or mo.tenant_id != tenant_id:
            raise NotFound(f"manager order {mo_id} not found", code="manager_order_not_found")
        rows = await uow.child_orders.list(tenant_id, follower_id=follower_id, mo_id=mo_id,
                                           since=None, limit=cap + 1, after=after,
                                           vault_ids=vault_ids)
        children = rows[:cap]
        fo_ids = [c.fo_id for c in children]
        legs = await uow.legs.for_children(fo_ids)
        leg_ids = [g.leg_id for rows in legs.values() for g in rows]
        events = await uow.audit.for_entities(tenant_id, [mo_id, *fo_ids, *leg_ids])
        leaves = await uow.audit.leaves_for(tenant_id, fo_ids)
        attempts = await uow.attempts.list_many(fo_ids)
        fills = await uow.fills.for_children(fo_ids)
    facts = [ChildFacts(_child_node(c), c.broker_order_ref,
                        [_attempt_node(a) for a in attempts.get(c.fo_id, ())],
                        [_fill_node(f) for f in fills.get(c.fo_id, ())],
                        [_rail_leg_node(g) for g in legs.get(c.fo_id, ())])
             for c in children]
    audit: dict[str, list[DagNode]] = defaultdict(list)
    for e in events:
        owner = mo_node_id(e.entity_id) if e.entity == "manager_order" else \
            child_node_id(e.entity_id) if e.entity == "follower_order" else \
            rail_leg_node_id(e.entity_id) if e.entity == "child_leg" else None
        if owner is not None:
            audit[owner].append(_audit_node(e))
    for lf in leaves:  # records settled in a batch event come after the events before it
        audit[child_node_id(lf.entity_id)].append(_leaf_node(lf))
    for nodes in audit.values():
        nodes.sort(key=lambda n: (n.attrs["seq"], n.attrs.get("leaf", -1)))
    last = children[-1] if len(rows) > cap else None
    return DagPage(build_dag(_order_node(mo), mo_id, facts, audit), len(children),
                   None if last is None else (last.created_at, last.fo_id))
