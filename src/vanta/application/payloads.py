"""The body a follower receives, in the shape of the spec's dispatch example.

A child's body is rendered once, when its order is expanded (``fixed_body``), and stored
with its outbox row; each attempt only splices in what changes between attempts, the send
time, the attempt number and the last error (``attempt_body``), so a retry or a batch of
10,000 sends costs a byte concatenation each, not a JSON rendering."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.domain.ids import dag_id_for
from vanta.domain.legs import Leg
from vanta.domain.orders import Side, TimeInForce


class BodyOrder(Protocol):
    @property
    def mo_id(self) -> str: ...
    @property
    def client_order_id(self) -> str: ...
    @property
    def tif(self) -> TimeInForce: ...
    @property
    def meta(self) -> Mapping[str, Any] | None: ...


class BodyChild(Protocol):
    @property
    def fo_id(self) -> str: ...
    @property
    def follower_id(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def venue(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def cap_applied(self) -> bool: ...


class BodyFollower(Protocol):
    @property
    def scale(self) -> Decimal: ...
    @property
    def max_pos_usd(self) -> Decimal | None: ...
    @property
    def kill_switch(self) -> bool: ...


def json_number(d: Decimal) -> int | float | str:
    """Quantities go out as JSON numbers with exactly their decimal digits.

    A value a float cannot carry exactly is sent as a string rather than altered.
    """
    if d == d.to_integral_value():
        return int(d)
    f = float(d)
    return f if Decimal(repr(f)) == d else str(d)


# One encoder for every body (building one per call costs as much as the encoding).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _dumps(value: object) -> bytes:
    return _ENCODER.encode(value).encode()


class OrderPart:
    """What every child of one order shares, worked out once per order."""

    def __init__(self, order: BodyOrder) -> None:
        meta: Mapping[str, Any] = order.meta or {}
        self.order = order
        self.reason_vector = meta.get("reason_vector", [])
        self.conviction = meta.get("conviction")
        self.source = {"source": meta["meta"]} if meta.get("meta") else {}
        self.provenance = meta.get("provenance")
        self.audit = {"dag_id": dag_id_for(order.mo_id), "upstream_dag_id": meta.get("dag_id")}

    def body(self, child: BodyChild, follower: BodyFollower, vault_id: str,
             legs: Sequence[Leg] = ()) -> bytes:
        """The child's body without its per-attempt fields: a JSON object whose last member
        is ``audit`` (see ``attempt_body``). ``legs``: a cross-rail child's plan (a USD→USDC
        conversion, then the asset order), sent for the follower to run in order."""
        order, max_pos = self.order, follower.max_pos_usd
        return _dumps({
            "id": child.fo_id,
            "follower_id": child.follower_id,
            "vault_id": vault_id,
            "symbol": child.symbol,
            "venue": child.venue,
            "side": child.side.value,
            "qty": json_number(child.qty),
            "time_in_force": order.tif.value,
            "reason_vector": self.reason_vector,
            "conviction": self.conviction,
            "meta": {
                "manager_order_id": order.client_order_id,
                "mo_id": order.mo_id,
                "scale": json_number(follower.scale),
                "max_pos_usd": None if max_pos is None else json_number(max_pos),
                "kill_switch": follower.kill_switch,
                "cap_applied": child.cap_applied,
                **self.source,
            },
            "provenance": self.provenance,
            **({"legs": [_leg_json(g) for g in legs]} if legs else {}),
            "audit": self.audit,  # last: attempt_body completes it
        })


def attempt_body(fixed: bytes, *, ts: str, attempt_no: int, last_error: str | None) -> bytes:
    """One attempt's body: ``ts`` first, then the stored body with the attempt's fields
    appended to its closing ``audit`` object."""
    if not (fixed.startswith(b"{") and fixed.endswith(b"}}")):
        raise ValueError("not a stored dispatch body")
    return (b'{"ts":%s,%s,"dispatch_attempts":%d,"last_error":%s,"state":"sent"}}'
            % (_dumps(ts), fixed[1:-2], attempt_no, _dumps(last_error)))


def dispatch_body(*, child: ChildOrderRecord, order: BodyOrder, follower: BodyFollower,
                  ts: str, attempt_no: int) -> bytes:
    """One attempt's body rendered in one go (a child whose outbox row has no stored body:
    a redelivery, or a row written before bodies were stored)."""
    fixed = OrderPart(order).body(child, follower, child.vault_id)
    return attempt_body(fixed, ts=ts, attempt_no=attempt_no, last_error=child.last_error)


def _leg_json(g: Leg) -> dict[str, Any]:
    """One leg as the follower runs it; ``after``: the index of the leg to fill first."""
    return {"leg_id": g.leg_id, "index": g.index, "kind": g.kind.value, "venue": g.venue,
            "pair": g.pair, "side": g.side, "amount": json_number(g.amount),
            "after": g.after}
