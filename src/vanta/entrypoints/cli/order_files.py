"""Orders read from files: the queue file (`vanta ingest`) and the OS memory folder
(`vanta ingest-memory`). Both submit through the same use case, so each order takes effect
once per (vault, order id) however often a file is read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.errors import DomainError

INGEST_MAX_BYTES = 64 * 1024 * 1024  # an order file, not a request: larger, still bounded


@dataclass
class Submission:
    """One row per order: (#, id, symbol, side, qty, result), and the refusals by order."""

    rows: list[tuple[str, ...]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    accepted: int = 0


def orders_in(doc: Any) -> list[Any] | None:
    """The orders a file holds: a JSON list, ``{"orders": [...]}`` (whose ``vault_id``, if
    any, applies to orders without one), or one order object; None for any other shape."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("orders"), list):
        vid = doc.get("vault_id")
        if not isinstance(vid, str):
            return list(doc["orders"])
        return [{"vault_id": vid, **o} if isinstance(o, dict) and "vault_id" not in o else o
                for o in doc["orders"]]
    if isinstance(doc, dict) and "symbol" in doc:
        return [doc]
    return None


async def submit_items(uow: Callable[[], UnitOfWork], items: list[Any], *, tenant_id: str,
                       actor: str, require_instrument: bool,
                       report: Callable[[int, int], None] | None = None) -> Submission:
    out = Submission()
    for i, raw in enumerate(items):
        if report is not None:
            report(i, len(items))
        rid = str(raw.get("id", "")) if isinstance(raw, dict) else ""
        if isinstance(raw, dict) and raw.get("id") is None:
            # the file path must be replay-safe: without an id an order could apply twice
            out.rows.append((str(i), "-", "", "", "", "[red]rejected: missing_field (id)[/red]"))
            out.refused.append(f"order {i}: missing_field (id)")
            continue
        try:
            order = parse_order_input(raw)
            res = await submit_manager_order(uow(), tenant_id=tenant_id, order=order,
                                             source="file", actor=actor,
                                             require_instrument=require_instrument)
        except DomainError as e:
            out.rows.append((str(i), rid, "", "", "",
                             f"[red]rejected: {e.code}: {e.message}[/red]"))
            out.refused.append(f"order {i} ({rid or '-'}): {e.code}: {e.message}")
            continue
        out.accepted += 1
        result = (f"accepted, {len(res.expansion.children)} children" if res.created and
                  res.expansion else "already ingested")
        out.rows.append((str(i), order.client_order_id, order.symbol, order.side.value,
                         str(order.qty), result))
    if report is not None:
        report(len(items), len(items))
    return out
