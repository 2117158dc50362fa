"""A run's report: the plan as JSON (decimals as strings), with a summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from vanta.application.clock import iso
from vanta.domain.reconciliation import Blocked, Book, Drift, FixUp, Plan


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _drift(d: Drift) -> dict[str, Any]:
    return {"follower_id": d.follower_id, "symbol": d.symbol, "manager_symbol": d.manager_symbol,
            "target": str(d.target), "held": str(d.held), "pending": str(d.pending),
            "drift_qty": str(d.qty), "drift_usd": _s(d.usd), "drift_bps": _s(d.bps),
            "over_threshold": d.over}


def _fixup(f: FixUp) -> dict[str, Any]:
    return {"follower_id": f.follower_id, "symbol": f.symbol, "manager_symbol": f.manager_symbol,
            "venue": f.venue, "side": f.side.value, "qty": str(f.qty), "price": _s(f.price),
            "cap_applied": f.cap_applied, "reason": "reconcile", "fo_id": None}


def _blocked(b: Blocked) -> dict[str, Any]:
    return {"follower_id": b.follower_id, "symbol": b.symbol, "reason": b.reason,
            "drift_qty": str(b.drift_qty), "partial": b.partial}


def summarize(drifts: Sequence[Mapping[str, Any]], fixups: Sequence[Any],
              blocked: Sequence[Any], findings: Sequence[Any]) -> dict[str, Any]:
    """``max_drift_bps`` and ``summary`` of a report's lines."""
    bps = [Decimal(d["drift_bps"]) for d in drifts if d["drift_bps"] is not None]
    return {"max_drift_bps": str(max(bps)) if bps else None,
            "summary": {"drifts_over_threshold": sum(1 for d in drifts if d["over_threshold"]),
                        "fixups": len(fixups), "blocked": len(blocked),
                        "findings": len(findings)}}


def plan_report(p: Plan, books: Sequence[Book], *, run_id: str, vault_id: str, dry_run: bool,
                created_at: datetime, manager_nav: Decimal | None) -> dict[str, Any]:
    lines = {
        "drifts": [_drift(d) for d in p.drifts],
        "fixups": [_fixup(f) for f in p.fixups],
        "blocked": [_blocked(b) for b in p.blocked],
        "findings": [{"follower_id": f.follower_id, "kind": f.kind, "detail": f.detail}
                     for f in p.findings],
    }
    return {
        "id": run_id, "vault_id": vault_id, "dry_run": dry_run, "created_at": iso(created_at),
        "manager_nav": _s(manager_nav),
        "followers": [{"follower_id": b.spec.follower_id, "positions_source": b.source,
                       "positions_as_of": None if b.as_of is None else iso(b.as_of),
                       "threshold_bps": b.threshold_bps,
                       "nav": None if b.nav is None else str(b.nav.nav),
                       "cash": _s(b.cash)}
                      for b in sorted(books, key=lambda b: b.spec.follower_id)],
        **lines,
        **summarize(lines["drifts"], lines["fixups"], lines["blocked"], lines["findings"]),
    }
