"""Cross-rail routing in a replay bundle: what goes in, and how a verifier routes again.

The bundle carries, per routed child, the router's whole input as the audit log recorded it
(``inputs/routes.json``: the request and the fee models it was priced with) and the legs as
stored (``outputs/legs.json``). Verification routes every child again with the pure router
and checks the recorded decision (the chosen route and every rejected one with its cost), the
legs it planned (from their ``leg_planned`` events: the amounts before any resize) and the
stored legs' shape. A child without a feasible route is skipped at expansion; the children
recomputation applies that too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vanta.application.ports.legs import LegRecord
from vanta.domain.audit import AuditEvent
from vanta.domain.legs import plan_legs
from vanta.domain.replay_bundle import BundleInvalid, json_doc
from vanta.domain.routing import choose_route, request_from_json
from vanta.domain.venues import VenueFees

ROUTES = "inputs/routes.json"
LEGS = "outputs/legs.json"
ROUTE_ACTIONS = frozenset({"route_chosen", "route_unavailable"})
_LEG_SHAPE = ("leg_id", "kind", "venue", "pair", "side", "after")


def _priced(events: Sequence[AuditEvent]) -> Mapping[str, Any]:
    """The models an expansion recorded once for all its children (``routes_priced``)."""
    return next((e.payload["models"] for e in events if e.entity == "manager_order"
                 and e.action == "routes_priced"), {})


def _models_of(event: AuditEvent, priced: Mapping[str, Any]) -> dict[str, Any]:
    if "models" in event.payload:
        return dict(event.payload["models"])
    return {v: priced[v] for v in sorted(set(event.payload["request"]["venues"]))
            if v in priced}


def route_files(events: Sequence[AuditEvent], legs: Iterable[LegRecord]) -> dict[str, bytes]:
    priced = _priced(events)
    routes = sorted(({"fo_id": e.entity_id, "request": e.payload["request"],
                      "models": _models_of(e, priced)}
                     for e in events if e.entity == "follower_order"
                     and e.action in ROUTE_ACTIONS and "request" in e.payload),
                    key=lambda r: r["fo_id"])
    stored = sorted(({"fo_id": g.fo_id, **g.leg().to_json()} for g in legs),
                    key=lambda g: (g["fo_id"], g["index"]))
    return {ROUTES: json_doc(routes), LEGS: json_doc(stored)}


def _load(files: Mapping[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name])
    except KeyError:
        raise BundleInvalid(f"missing file {name}") from None


def unrouted(files: Mapping[str, bytes]) -> set[str]:
    """Children the router found no feasible route for (none in a bundle without routes)."""
    if ROUTES not in files:
        return set()
    return {r["fo_id"] for r in _load(files, ROUTES) if choose_route(
        request_from_json(r["request"]), _models(r["models"])).chosen is None}


def _models(raw: Mapping[str, Any]) -> dict[str, VenueFees]:
    return {v: VenueFees.from_json(m) for v, m in raw.items()}


def check_routes(files: Mapping[str, bytes], events: Sequence[AuditEvent],
                 problems: list[str], notes: list[str]) -> None:
    if ROUTES not in files:
        return
    recorded = {e.entity_id: e for e in events if e.action in ROUTE_ACTIONS}
    priced = _priced(events)
    planned: dict[str, list[Mapping[str, Any]]] = {}
    for e in events:
        if e.entity == "child_leg" and e.action == "leg_planned":
            planned.setdefault(str(e.payload["fo_id"]), []).append(e.payload)
    stored: dict[str, list[Mapping[str, Any]]] = {}
    for g in _load(files, LEGS):
        stored.setdefault(g["fo_id"], []).append(g)
    routes = _load(files, ROUTES)
    for r in routes:
        fo_id = r["fo_id"]
        ev = recorded.get(fo_id)
        if ev is None or ev.payload.get("request") != r["request"] or \
                _models_of(ev, priced) != r["models"]:
            problems.append(f"child {fo_id}: {ROUTES} is not what its route event recorded")
            continue
        decision = choose_route(request_from_json(r["request"]), _models(r["models"]))
        again = decision.to_json()
        if {k: ev.payload.get(k) for k in again} != again:  # chosen, rejected, reason
            problems.append(f"child {fo_id}: routing again gives another decision than the "
                            f"one recorded (event #{ev.seq})")
            continue
        legs = [] if decision.chosen is None else plan_legs(fo_id, decision)
        want = [g.to_json() for g in legs]
        got = sorted(planned.get(fo_id, []), key=lambda p: int(p["index"]))
        if [{k: w[k] for k in (*_LEG_SHAPE, "amount")} for w in want] != \
                [{k: p.get(k) for k in (*_LEG_SHAPE, "amount")} for p in got]:
            problems.append(f"child {fo_id}: the planned legs differ from the route")
        elif [{k: w[k] for k in _LEG_SHAPE} for w in want] != \
                [{k: s.get(k) for k in _LEG_SHAPE} for s in stored.get(fo_id, [])]:
            problems.append(f"child {fo_id}: {LEGS} differs from the planned legs")
    if routes:
        notes.append(f"{len(routes)} route(s) recomputed and their legs checked")
