"""The DAG of one manager order: the order, its child orders and their broker legs,
delivery attempts, fills and audit events, as nodes and edges with states and timestamps.

Pure: the application gathers the facts (``vanta.application.dag``); this module decides the
shape. Node ids are typed prefixes of the stored ids, so the same order always gives the same
DAG (and ``dag_id``) whoever builds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vanta.domain.ids import dag_id_for

DAG_FORMAT = "vanta.order-dag/1"


@dataclass(frozen=True, slots=True)
class DagNode:
    id: str
    kind: str  # manager_order | child_order | leg | rail_leg | attempt | fill | audit_event
    state: str | None
    at: Mapping[str, str | None]  # named timestamps (created_at, started_at, ts…)
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "state": self.state, "at": dict(self.at),
                "attrs": dict(self.attrs)}


@dataclass(frozen=True, slots=True)
class DagEdge:
    source: str
    target: str
    kind: str  # expanded_to | submitted_as | planned_as | then | attempted | filled | audited
    state: str | None
    at: str | None

    def to_json(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.target, "kind": self.kind,
                "state": self.state, "at": self.at}


@dataclass(frozen=True, slots=True)
class Dag:
    dag_id: str
    mo_id: str
    nodes: tuple[DagNode, ...]
    edges: tuple[DagEdge, ...]

    def to_json(self) -> dict[str, Any]:
        return {"format": DAG_FORMAT, "dag_id": self.dag_id, "mo_id": self.mo_id,
                "nodes": [n.to_json() for n in self.nodes],
                "edges": [e.to_json() for e in self.edges]}


@dataclass(frozen=True, slots=True)
class ChildFacts:
    """One child order with what happened to it (plain values: ISO times, decimal strings)."""

    node: DagNode
    broker_order_ref: str | None
    attempts: Sequence[DagNode]
    fills: Sequence[DagNode]
    # cross-rail legs (a USD->USDC conversion, then the asset order), in plan order; each
    # node's attrs name its ``after`` (the index of the leg it waits on)
    rail_legs: Sequence[DagNode] = ()


def rail_leg_node_id(leg_id: str) -> str:
    return f"rail_leg:{leg_id}"


def mo_node_id(mo_id: str) -> str:
    return f"mo:{mo_id}"


def child_node_id(fo_id: str) -> str:
    return f"fo:{fo_id}"


def build_dag(order: DagNode, mo_id: str, children: Sequence[ChildFacts],
              audit: Mapping[str, Sequence[DagNode]]) -> Dag:
    """``order`` and each child's node are given whole; ``audit`` maps a node id (the order's
    or a child's) to its audit event nodes, in chain order."""
    nodes: list[DagNode] = [order]
    edges: list[DagEdge] = []
    _audited(order.id, audit, nodes, edges)
    for c in children:
        nodes.append(c.node)
        edges.append(DagEdge(order.id, c.node.id, "expanded_to", c.node.state,
                             c.node.at.get("created_at")))
        _audited(c.node.id, audit, nodes, edges)
        fill_parent = c.node.id
        if c.broker_order_ref is not None:  # a bridged child: the order at the broker
            leg = DagNode(f"leg:{c.node.id[3:]}", "leg", c.node.state,
                          {"updated_at": c.node.at.get("updated_at")},
                          {"broker_order_ref": c.broker_order_ref})
            nodes.append(leg)
            edges.append(DagEdge(c.node.id, leg.id, "submitted_as", leg.state,
                                 leg.at.get("updated_at")))
            fill_parent = leg.id
        _rail_legs(c, audit, nodes, edges)
        for a in c.attempts:
            nodes.append(a)
            edges.append(DagEdge(c.node.id, a.id, "attempted", a.state, a.at.get("started_at")))
        for f in c.fills:
            nodes.append(f)
            edges.append(DagEdge(fill_parent, f.id, "filled", f.state, f.at.get("ts")))
    return Dag(dag_id_for(mo_id), mo_id, tuple(nodes), tuple(edges))


def _rail_legs(c: ChildFacts, audit: Mapping[str, Sequence[DagNode]], nodes: list[DagNode],
               edges: list[DagEdge]) -> None:
    """Each leg hangs off its child; a leg that waits on another also has a ``then`` edge
    from it, so the conversion-before-order sequence is visible."""
    for leg in c.rail_legs:
        nodes.append(leg)
        edges.append(DagEdge(c.node.id, leg.id, "planned_as", leg.state,
                             leg.at.get("updated_at")))
        after = leg.attrs.get("after")
        if after is not None and 0 <= after < len(c.rail_legs):
            edges.append(DagEdge(c.rail_legs[after].id, leg.id, "then", leg.state,
                                 leg.at.get("updated_at")))
        _audited(leg.id, audit, nodes, edges)


def _audited(node_id: str, audit: Mapping[str, Sequence[DagNode]], nodes: list[DagNode],
             edges: list[DagEdge]) -> None:
    for ev in audit.get(node_id, ()):
        nodes.append(ev)
        edges.append(DagEdge(node_id, ev.id, "audited", ev.state, ev.at.get("ts")))
