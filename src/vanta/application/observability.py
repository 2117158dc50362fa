"""What the delivery path writes to the journal (``mirror_dispatch.log``, ``trade_log.jsonl``):
the lines' shapes in one place, so the hot path makes one call per attempt or per batch.

Correlation ids on every line: ``mo_id``, ``fo_id``, ``follower_id``, ``vault_id`` and, when
tracing is on, ``trace_id``. Ingest, which runs far from the composition root, writes through
the process's journal (:func:`install`); the dispatcher is given its own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from vanta.application.ports.delivery import SendResult
from vanta.application.ports.journal import NO_JOURNAL, Journal
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.application.ports.tracer import trace_id_of

__all__ = ["attempt_settled", "attempts_started", "child_moved", "children_created",
           "fill_recorded", "install", "journal"]

_journal: list[Journal] = [NO_JOURNAL]


def install(j: Journal) -> None:
    _journal[0] = j


def journal() -> Journal:
    return _journal[0]


def _ids(child: ChildOrderRecord) -> dict[str, Any]:
    return {"mo_id": child.mo_id, "fo_id": child.fo_id, "follower_id": child.follower_id,
            "vault_id": child.vault_id, "tenant_id": child.tenant_id}


def attempt_settled(j: Journal, child: ChildOrderRecord, attempt_no: int, result: SendResult,
                    state: str, error: str | None, now: datetime, delay: float | None,
                    traceparent: str | None) -> None:
    """One answered attempt: its line in the dispatch log, the child's move in the trade log."""
    if j is NO_JOURNAL:
        return
    ids = _ids(child)
    trace_id = trace_id_of(traceparent)
    j.dispatch_attempt({
        **ids, "trace_id": trace_id, "attempt": attempt_no, "outcome": state,
        "status": result.status, "latency_ms": result.latency_ms, "error": error,
        "next_retry_at": None if delay is None else (now + timedelta(seconds=delay)).isoformat(),
        "broker_ref": result.broker_ref})
    j.trade_event({"event": "state", **ids, "trace_id": trace_id, "from": "sent", "to": state,
                   "attempt": attempt_no, "error": error})


class _Row(Protocol):
    @property
    def payload(self) -> Mapping[str, Any]: ...


def attempts_started(j: Journal, children: Mapping[str, ChildOrderRecord],
                     moved: Mapping[str, int], by_state: Mapping[str, Iterable[_Row]]) -> None:
    """The children a batch moved to ``sent`` (``moved``: fo_id → attempt number), by the
    state each left."""
    if j is NO_JOURNAL:
        return
    for previous, rows in by_state.items():
        for row in rows:
            fo_id = row.payload["fo_id"]
            if fo_id in moved:
                j.trade_event({"event": "state", **_ids(children[fo_id]),
                               "trace_id": trace_id_of(row.payload.get("traceparent")),
                               "from": previous, "to": "sent", "attempt": moved[fo_id]})


def child_moved(j: Journal, child: ChildOrderRecord, previous: str, state: str,
                **detail: Any) -> None:
    """A move outside an attempt: cancelled, dead-lettered, settled by the broker."""
    if j is not NO_JOURNAL:
        j.trade_event({"event": "state", **_ids(child), "from": previous, "to": state,
                       **detail})


def children_created(j: Journal, children: Iterable[Any], *, tenant_id: str, vault_id: str,
                     traceparent: str | None) -> None:
    """The children an expansion made (domain child orders: pending, or skipped)."""
    if j is NO_JOURNAL:
        return
    trace_id = trace_id_of(traceparent)
    for c in children:
        j.trade_event({"event": "state", "mo_id": c.mo_id, "fo_id": c.fo_id,
                       "follower_id": c.follower_id, "vault_id": vault_id,
                       "tenant_id": tenant_id, "trace_id": trace_id, "from": None,
                       "to": c.state.value, "qty": str(c.qty), "skip_reason": c.skip_reason})


def fill_recorded(j: Journal, child: ChildOrderRecord, trade_id: str, qty: Decimal,
                  price: Decimal, ts: datetime) -> None:
    if j is not NO_JOURNAL:
        j.trade_event({"event": "fill", **_ids(child), "trade_id": trade_id, "qty": str(qty),
                       "price": str(price), "ts": ts.isoformat()})
