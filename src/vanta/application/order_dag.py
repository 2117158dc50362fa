"""An order's DAG for people: manager order -> child orders -> delivery attempts -> fills,
with the audit events of each node. Read-only; the caller's narrowing (vaults, follower)
decides which children appear, exactly as it does for the order's children elsewhere."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vanta.application.ports.uow import UnitOfWork
from vanta.domain.errors import NotFound


@dataclass
class DagNode:
    node_id: str
    kind: str  # manager_order | child_order | rail_leg | attempt | fill | audit | more
    label: str
    state: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class OrderDag:
    mo_id: str
    nodes: list[DagNode]
    edges: list[tuple[str, str]]
    children_drawn: int
    more: bool  # the order has further children the caller may see (not drawn)


async def order_dag(uow: UnitOfWork, *, tenant_id: str, mo_id: str,
                    follower_id: str | None, vault_ids: Iterable[str] | None,
                    max_children: int = 12) -> OrderDag:
    """The first ``max_children`` children the caller may see (its follower, its vaults:
    the same narrowing as the order's children list) are drawn with their attempts, fills
    and audit events; one ``more`` node stands for the rest (an order may have 10,000)."""
    async with uow:
        found = (await uow.manager_orders.get_many_unscoped([mo_id])).get(mo_id)
        mo = found if found is not None and found.tenant_id == tenant_id else None
        if mo is None:
            raise NotFound(f"manager order {mo_id} not found", code="manager_order_not_found")
        children = await uow.child_orders.list(
            tenant_id, follower_id=follower_id, mo_id=mo_id, since=None,
            limit=max_children + 1, vault_ids=vault_ids)
        drawn = children[:max_children]
        attempts = {c.fo_id: await uow.attempts.list(c.fo_id) for c in drawn}
        fills = {c.fo_id: await uow.fills.for_child(c.fo_id) for c in drawn}
        legs = await uow.legs.for_children([c.fo_id for c in drawn])
        mo_audit = await uow.audit.for_entity(tenant_id, mo_id)
        child_audit = {c.fo_id: await uow.audit.for_entity(tenant_id, c.fo_id) for c in drawn}
    nodes = [DagNode(mo_id, "manager_order", f"{mo.side.value} {mo.qty} {mo.symbol}",
                     mo.state.value, {"vault_id": mo.vault_id, "id": mo.client_order_id})]
    edges: list[tuple[str, str]] = []
    for ev in mo_audit:
        nodes.append(DagNode(f"audit:{ev.event_id}", "audit", ev.action, "",
                             {"actor": ev.actor, "ts": ev.ts, "seq": ev.seq}))
        edges.append((mo_id, f"audit:{ev.event_id}"))
    for c in drawn:
        label = f"{c.side.value} {c.qty}" + (f" ({c.skip_reason})" if c.skip_reason else "")
        nodes.append(DagNode(c.fo_id, "child_order", label, c.state.value,
                             {"follower_id": c.follower_id}))
        edges.append((mo_id, c.fo_id))
        for g in legs.get(c.fo_id, ()):  # cross-rail legs: conversion, then the asset order
            nodes.append(DagNode(g.leg_id, "rail_leg", f"{g.kind} {g.pair} {g.amount}",
                                 g.state, {"venue": g.venue, "filled": str(g.filled),
                                           "attempts": g.attempts, "reason": g.reason}))
            edges.append((c.fo_id if g.after_idx is None else f"{c.fo_id}.{g.after_idx}",
                          g.leg_id))
        for a in attempts[c.fo_id]:
            aid = f"attempt:{c.fo_id}:{a.attempt_no}"
            nodes.append(DagNode(aid, "attempt", f"attempt {a.attempt_no}", a.outcome,
                                 {"status_code": a.status_code, "latency_ms": a.latency_ms}))
            edges.append((c.fo_id, aid))
        for f in fills[c.fo_id]:
            fid = f"fill:{f.trade_id}"
            nodes.append(DagNode(fid, "fill", f"fill {f.qty} @ {f.price}", "filled"))
            edges.append((c.fo_id, fid))
        for ev in child_audit[c.fo_id]:
            nodes.append(DagNode(f"audit:{ev.event_id}", "audit", ev.action, "",
                                 {"actor": ev.actor, "ts": ev.ts, "seq": ev.seq}))
            edges.append((c.fo_id, f"audit:{ev.event_id}"))
    more = len(children) > len(drawn)
    if more:
        nodes.append(DagNode("more", "more", "more children: see the table"))
        edges.append((mo_id, "more"))
    return OrderDag(mo_id, nodes, edges, len(drawn), more)
