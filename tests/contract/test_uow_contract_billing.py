"""The unit of work's contract, part 4: the billing repositories (inbox, flows, fee ledger,
subscription look-ups), on the fake, SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import T0, Db, at, seed_world
from vanta.application.ports.billing import BillingConflict
from vanta.application.ports.records_billing import FeePeriodRecord, FlowRecord, InboxRecord

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)


async def test_inbox_keeps_one_row_per_event(backend: Db) -> None:
    def event(eid: str, provider: str, secs: float) -> dict[str, Any]:
        return {"inbox_id": f"{provider}:{eid}", "provider": provider, "event_type": "x",
                "received_at": at(secs), "payload": {"id": eid}}
    assert await backend.run(lambda u: u.inbox.add_if_new(event("e2", "stripe", 2))) is True
    assert await backend.run(lambda u: u.inbox.add_if_new(event("e2", "stripe", 3))) is False
    assert await backend.run(lambda u: u.inbox.add_if_new(event("e1", "stripe", 2))) is True
    assert await backend.run(lambda u: u.inbox.add_if_new(event("e0", "btcpay", 1))) is True
    await backend.run(lambda u: u.inbox.mark("stripe:e2", outcome="applied" * 20,
                                             processed_at=at(9)))
    rows = await backend.read(lambda u: u.inbox.list())
    assert all(type(r) is InboxRecord for r in rows)
    assert [r.inbox_id for r in rows] == ["btcpay:e0", "stripe:e1", "stripe:e2"]
    assert [r.inbox_id for r in await backend.read(lambda u: u.inbox.list("stripe"))] \
        == ["stripe:e1", "stripe:e2"]
    marked = await backend.read(lambda u: u.inbox.get("stripe:e2"))
    assert (len(marked.outcome), marked.processed_at, marked.payload) \
        == (64, at(9), {"id": "e2"})


async def test_inbox_pages_a_tenants_events_newest_first(backend: Db) -> None:
    for eid, secs, tenant in (("a1", 1, "T1"), ("a2", 2, "T1"), ("b1", 2, "T2"),
                              ("a3", 2, "T1"), ("n1", 3, None), ("a4", 4, "T1")):
        row = {"inbox_id": f"stripe:{eid}", "provider": "stripe", "event_type": "x",
               "received_at": at(secs), "payload": {}}
        await backend.run(lambda u, row=row: u.inbox.add_if_new(row))
        await backend.run(lambda u, eid=eid, secs=secs, tenant=tenant: u.inbox.mark(
            f"stripe:{eid}", outcome="applied", processed_at=at(secs), tenant_id=tenant))
    first = await backend.read(lambda u: u.inbox.page("T1", limit=2))
    assert [(r.inbox_id, r.tenant_id) for r in first] \
        == [("stripe:a4", "T1"), ("stripe:a3", "T1")]
    rest = await backend.read(lambda u: u.inbox.page(
        "T1", limit=5, before=(first[-1].received_at, first[-1].inbox_id)))
    assert [r.inbox_id for r in rest] == ["stripe:a2", "stripe:a1"]
    assert [r.inbox_id for r in await backend.read(lambda u: u.inbox.page("T2", limit=5))] \
        == ["stripe:b1"]


async def test_flows_window_and_order(backend: Db) -> None:
    await seed_world(backend)
    ids = []
    for kind, amount, secs, fid in (("deposit", "100", 10, "FA1"), ("withdrawal", "5.50", 10,
                                                                   "FA1"),
                                    ("deposit", "1", 5, "FA1"), ("deposit", "9", 7, "FA2")):
        ids.append(await backend.run(lambda u, k=kind, a=amount, s=secs, f=fid: u.flows.add(
            {"tenant_id": "tnt_a", "follower_id": f, "kind": k, "amount": Decimal(a),
             "at": at(s)})))
    assert len(set(ids)) == 4 and all(isinstance(i, int) and i > 0 for i in ids)
    rows = await backend.read(lambda u: u.flows.list("tnt_a", "FA1"))
    assert all(type(r) is FlowRecord for r in rows)
    assert [(r.amount, r.at) for r in rows] \
        == [(Decimal("1"), at(5)), (Decimal("100"), at(10)), (Decimal("5.5"), at(10))]
    win = await backend.read(lambda u: u.flows.list("tnt_a", "FA1", after=at(5), until=at(10)))
    assert [r.kind for r in win] == ["deposit", "withdrawal"]
    assert await backend.read(lambda u: u.flows.list("tnt_b", "FA1")) == []


def _period(label: str, end: float, fid: str = "FA1") -> dict[str, Any]:
    d = Decimal
    return {"tenant_id": "tnt_a", "follower_id": fid, "period_label": label,
            "period_end": at(end), "rate": d("0.20"), "nav_start": d("100"),
            "nav_end": d("110"), "net_flows": d("0"), "pnl": d("10"), "fee": d("2.00"),
            "hwm_before": d("100"), "hwm_after": d("110"), "created_at": T0}


async def test_fee_ledger_periods_and_invoice_once(backend: Db) -> None:
    await seed_world(backend)
    first = await backend.run(lambda u: u.fee_ledger.add(_period("2026-01", 10)))
    await backend.run(lambda u: u.fee_ledger.add(_period("2026-02", 20)))
    await backend.run(lambda u: u.fee_ledger.add(_period("2026-01", 10, "FA2")))
    with pytest.raises(BillingConflict):
        await backend.run(lambda u: u.fee_ledger.add(_period("2026-01", 30)))
    got = await backend.read(lambda u: u.fee_ledger.get("tnt_a", "FA1", "2026-01"))
    assert type(got) is FeePeriodRecord
    assert (got.id, got.fee, str(got.rate)) == (first, Decimal("2"), "0.2")
    assert (await backend.read(lambda u: u.fee_ledger.last("tnt_a", "FA1"))).period_label \
        == "2026-02"
    assert [r.period_label for r in await backend.read(
        lambda u: u.fee_ledger.list("tnt_a", "FA1"))] == ["2026-01", "2026-02"]
    assert await backend.read(lambda u: u.fee_ledger.get("tnt_b", "FA1", "2026-01")) is None
    assert await backend.run(lambda u: u.fee_ledger.set_invoice(
        first, provider="stripe", invoice_ref="in_1")) is True
    assert await backend.run(lambda u: u.fee_ledger.set_invoice(
        first, provider="stripe", invoice_ref="in_2")) is False
    assert (await backend.read(lambda u: u.fee_ledger.by_invoice_ref("tnt_a", "in_1"))).id \
        == first
    assert await backend.read(lambda u: u.fee_ledger.by_invoice_ref("tnt_b", "in_1")) is None
    assert [r.invoice_ref for r in await backend.read(
        lambda u: u.fee_ledger.invoiced("tnt_a"))] == ["in_1"]


async def test_fee_ledger_keeps_the_refunded_total(backend: Db) -> None:
    await seed_world(backend)
    row = await backend.run(lambda u: u.fee_ledger.add(_period("2026-01", 10)))
    got = await backend.read(lambda u: u.fee_ledger.get("tnt_a", "FA1", "2026-01"))
    assert got.refunded == Decimal(0)
    await backend.run(lambda u: u.fee_ledger.set_refunded(row, Decimal("0.75")))
    await backend.run(lambda u: u.fee_ledger.set_refunded(row, Decimal("1.25")))
    got = await backend.read(lambda u: u.fee_ledger.get("tnt_a", "FA1", "2026-01"))
    assert got.refunded == Decimal("1.25")


async def test_billing_subscription_lookups(backend: Db) -> None:
    await seed_world(backend)

    def sub(sid: str, tenant: str, **kw: Any) -> dict[str, Any]:
        return {"subscription_id": sid, "tenant_id": tenant, "plan_id": "pro",
                "status": "active", "entitlements": {}, "created_at": T0, **kw}
    await backend.run(lambda u: u.subscriptions.replace("tnt_a", sub(
        "sa", "tnt_a", provider="btcpay", renewal_at=at(50), customer_ref="cus_a",
        provider_ref="ref_a")))
    await backend.run(lambda u: u.subscriptions.replace("tnt_b", sub(
        "sb", "tnt_b", provider="stripe", status="past_due", past_due_since=at(5),
        customer_ref="cus_b", provider_ref="ref_b")))
    bs = "billing_subscriptions"
    assert (await backend.run(lambda u: getattr(u, bs).by_provider_ref_for_update("ref_b"))
            )["subscription_id"] == "sb"
    assert (await backend.run(lambda u: getattr(u, bs).current_for_update("tnt_a"))
            )["renewal_at"] == at(50)
    assert (await backend.run(lambda u: getattr(u, bs).by_customer_ref("cus_a"))
            )["subscription_id"] == "sa"
    assert await backend.run(lambda u: getattr(u, bs).by_customer_ref("nobody")) is None
    assert await backend.run(lambda u: getattr(u, bs).btcpay_due(at(49), ("active",))) == []
    due = await backend.run(lambda u: getattr(u, bs).btcpay_due(at(50), ("active", "x")))
    assert [r["subscription_id"] for r in due] == ["sa"]
    late = await backend.run(lambda u: getattr(u, bs).past_due_since_before("stripe", at(5)))
    assert [r["subscription_id"] for r in late] == ["sb"]
    assert await backend.run(lambda u: getattr(u, bs).past_due_since_before("stripe",
                                                                            at(4))) == []
