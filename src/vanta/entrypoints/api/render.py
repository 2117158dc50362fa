"""Rows to JSON for the API. Quantities are strings here: exact, whatever the client parses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from vanta.application.clock import iso
from vanta.application.ports.records_catalog import FollowerRecord, VaultRecord
from vanta.application.ports.records_orders import (
    AttemptRecord,
    ChildOrderRecord,
    ManagerOrderRecord,
)
from vanta.domain.orders import ChildOrder


def _dec(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _ts(v: datetime | None) -> str | None:
    return None if v is None else iso(v)


def vault_json(r: VaultRecord) -> dict[str, Any]:
    # redacted view: no risk internals beyond the profile summary
    return {"vault_id": r.vault_id, "label": r.label, "rails": r.rails,
            "personas": r.personas, "risk_profile": r.risk_profile,
            "public": r.public, "maintenance": r.maintenance,
            "created_at": _ts(r.created_at)}


def follower_json(r: FollowerRecord) -> dict[str, Any]:
    # the secret reference stays server-side
    return {"follower_id": r.follower_id, "vault_id": r.vault_id, "label": r.label,
            "mode": r.mode.value, "scale": _dec(r.scale), "max_pos_usd": _dec(r.max_pos_usd),
            "kill_switch": r.kill_switch, "paused": r.paused,
            "paused_reason": r.paused_reason, "scale_mode": r.scale_mode.value,
            "nav_multiplier": _dec(r.nav_multiplier), "fractional": r.fractional,
            "protections": r.protections, "plan": r.plan_id,
            "overlay_opt_in": r.overlay_opt_in,
            "webhook": None if r.webhook_url is None else {
                "url": r.webhook_url, "enabled": r.webhook_disabled_at is None,
                "disabled_reason": r.webhook_disabled_reason},
            # the broker only: credentials stay in the secret store
            "bridged": None if not r.bridged_brokers else {
                "broker": r.bridged_brokers["broker"]},
            "created_at": _ts(r.created_at), "updated_at": _ts(r.updated_at)}


def order_json(r: ManagerOrderRecord) -> dict[str, Any]:
    return {"mo_id": r.mo_id, "id": r.client_order_id, "vault_id": r.vault_id,
            "source": r.source, "symbol": r.symbol, "venue": r.venue,
            "side": r.side.value, "qty": _dec(r.qty), "tif": r.tif.value,
            "ref_price": _dec(r.ref_price), "closes_position": r.closes_position,
            "state": r.state.value, "meta": r.meta, "created_at": _ts(r.created_at),
            # "catalogue" or "default" (sized on the built-in rules); None before it was kept
            "instrument_source": (r.snapshot or {}).get("instrument_source")}


def child_json(r: ChildOrderRecord) -> dict[str, Any]:
    return {"fo_id": r.fo_id, "mo_id": r.mo_id, "follower_id": r.follower_id,
            "vault_id": r.vault_id, "symbol": r.symbol, "venue": r.venue,
            "side": r.side.value, "qty": _dec(r.qty), "cap_applied": r.cap_applied,
            "state": r.state.value, "skip_reason": r.skip_reason,
            "dispatch_attempts": r.dispatch_attempts, "last_error": r.last_error,
            "broker_order_ref": r.broker_order_ref,
            "filled_qty": _dec(r.filled_qty),
            "avg_fill_price": _dec(r.avg_fill_price),
            "sizing": (r.audit or {}).get("sizing"), "created_at": _ts(r.created_at),
            "updated_at": _ts(r.updated_at)}


def attempt_json(r: AttemptRecord) -> dict[str, Any]:
    return {"fo_id": r.fo_id, "attempt_no": r.attempt_no, "started_at": r.started_at.isoformat(),
            "status_code": r.status_code, "latency_ms": r.latency_ms,
            "response_excerpt": r.response_excerpt, "error": r.error, "outcome": r.outcome}


def child_json_from(c: ChildOrder) -> dict[str, Any]:
    """A freshly expanded child, before it has been read back from the database."""
    return {"fo_id": c.fo_id, "mo_id": c.mo_id, "follower_id": c.follower_id,
            "symbol": c.symbol, "venue": c.venue, "side": c.side.value, "qty": str(c.qty),
            "cap_applied": c.cap_applied, "state": c.state.value, "skip_reason": c.skip_reason,
            "sizing": c.sizing}
