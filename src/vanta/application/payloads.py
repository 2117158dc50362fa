"""The body a follower receives, in the shape of the spec's dispatch example."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_orders import ChildOrderRecord, ManagerOrderRecord
from vanta.domain.ids import dag_id_for
from vanta.domain.legs import Leg


def json_number(d: Decimal) -> int | float | str:
    """Quantities go out as JSON numbers with exactly their decimal digits.

    A value a float cannot carry exactly is sent as a string rather than altered.
    """
    if d == d.to_integral_value():
        return int(d)
    f = float(d)
    return f if Decimal(repr(f)) == d else str(d)


def dispatch_body(
    *, child: ChildOrderRecord, order: ManagerOrderRecord, follower: FollowerRecord,
    ts: str, attempt_no: int, legs: Sequence[Leg] = (),
) -> bytes:
    """``legs``: a cross-rail child's plan (a USD→USDC conversion, then the asset order),
    sent as ``legs`` for the follower to execute in order; absent for a plain child."""
    meta: Mapping[str, Any] = order.meta or {}
    max_pos = follower.max_pos_usd
    body = {
        "ts": ts,
        "id": child.fo_id,
        "follower_id": child.follower_id,
        "vault_id": child.vault_id,
        "symbol": child.symbol,
        "venue": child.venue,
        "side": child.side.value,
        "qty": json_number(child.qty),
        "time_in_force": order.tif.value,
        "reason_vector": meta.get("reason_vector", []),
        "conviction": meta.get("conviction"),
        "meta": {
            "manager_order_id": order.client_order_id,
            "mo_id": order.mo_id,
            "scale": json_number(follower.scale),
            "max_pos_usd": None if max_pos is None else json_number(max_pos),
            "kill_switch": follower.kill_switch,
            "cap_applied": child.cap_applied,
            **({"source": meta["meta"]} if meta.get("meta") else {}),
        },
        "audit": {
            "dag_id": dag_id_for(order.mo_id),
            "upstream_dag_id": meta.get("dag_id"),
            "dispatch_attempts": attempt_no,
            "last_error": child.last_error,
            "state": "sent",
        },
        "provenance": meta.get("provenance"),
    }
    if legs:
        body["legs"] = [_leg_json(g) for g in legs]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _leg_json(g: Leg) -> dict[str, Any]:
    """One leg as the follower runs it; ``after``: the index of the leg to fill first."""
    return {"leg_id": g.leg_id, "index": g.index, "kind": g.kind.value, "venue": g.venue,
            "pair": g.pair, "side": g.side, "amount": json_number(g.amount),
            "after": g.after}
