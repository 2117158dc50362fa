"""Performance fees: flows, closing periods over a NAV history, the ledger, the fee invoice."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.api.test_billing_api import (
    Billing,
    billing,
    btcpay_invoice,
    deliver_btcpay,
    subscribe,
)
from vanta.application.fees_service import close_fee_period
from vanta.application.ports.billing import BillingConflict

__all__ = ["billing"]  # the fixture, shared with the billing tests

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)


def day(n: float) -> str:
    return (T0 + timedelta(days=n)).isoformat().replace("+00:00", "Z")


async def follower(b: Billing, tenant: str = "tnt_a", vault: str = "VA") -> str:
    r = await b.client.post(f"/v1/vaults/{vault}/followers", headers=b.auth(tenant),
                            json={"webhook": {"url": "https://f.example/h"}})
    assert r.status_code == 201, r.text
    return r.json()["follower_id"]  # type: ignore[no-any-return]


async def nav(b: Billing, fid: str, value: str, at: str, tenant: str = "tnt_a") -> None:
    r = await b.client.post(f"/v1/followers/{fid}/nav", headers=b.auth(tenant),
                            json={"nav": value, "as_of": at})
    assert r.status_code == 201, r.text


async def flow(b: Billing, fid: str, kind: str, amount: str, at: str,
               tenant: str = "tnt_a") -> Any:
    return await b.client.post(f"/v1/followers/{fid}/flows", headers=b.auth(tenant),
                               json={"kind": kind, "amount": amount, "at": at})


async def close(b: Billing, fid: str, label: str, end: str, rate: str = "0.2",
                tenant: str = "tnt_a") -> Any:
    return await b.client.post(f"/v1/followers/{fid}/fees/close-period",
                               headers=b.auth(tenant),
                               json={"label": label, "rate": rate, "end": end})


def dec(body: dict[str, Any], *keys: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(body[k]) for k in keys)


async def test_a_deposit_is_not_a_gain(billing: Billing) -> None:
    fid = await follower(billing)
    await nav(billing, fid, "1000", day(0))
    r = await flow(billing, fid, "deposit", "500", day(1))
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], Decimal(r.json()["amount"])) == ("deposit", 500)
    await nav(billing, fid, "1500", day(2))
    r = await close(billing, fid, "P1", day(3))
    assert r.status_code == 201, r.text
    p1 = r.json()
    assert dec(p1, "pnl", "fee", "net_flows", "hwm_after") == (0, 0, 500, 1500)
    assert p1["fee"] == "0.00" and p1["invoice_status"] == "no_fee"

    await nav(billing, fid, "1600", day(4))
    p2 = (await close(billing, fid, "P2", day(5))).json()
    assert dec(p2, "nav_start", "nav_end", "pnl", "fee", "hwm_before", "hwm_after") == (
        1500, 1600, 100, 20, 1500, 1600)
    # fees are billed, not deducted: a withdrawal lowers the mark with the NAV
    assert (await flow(billing, fid, "withdrawal", "600", day(6))).status_code == 201
    await nav(billing, fid, "1000", day(6))
    p3 = (await close(billing, fid, "P3", day(7))).json()
    assert dec(p3, "pnl", "fee", "hwm_after") == (0, 0, 1000)


async def test_no_fee_after_a_loss_until_the_mark_is_regained(billing: Billing) -> None:
    fid = await follower(billing)
    await nav(billing, fid, "1000", day(0))
    await nav(billing, fid, "800", day(1))
    p1 = (await close(billing, fid, "2025-01", day(2))).json()
    assert dec(p1, "pnl", "fee", "hwm_after", "to_recover") == (-200, 0, 1000, 200)
    await nav(billing, fid, "950", day(3))
    p2 = (await close(billing, fid, "2025-02", day(4))).json()
    assert dec(p2, "pnl", "fee", "hwm_after", "to_recover") == (150, 0, 1000, 50)
    await nav(billing, fid, "1100", day(5))
    p3 = (await close(billing, fid, "2025-03", day(6))).json()
    assert dec(p3, "pnl", "fee", "hwm_before", "hwm_after") == (150, 20, 1000, 1100)

    ledger = (await billing.client.get(f"/v1/followers/{fid}/fees",
                                       headers=billing.auth())).json()
    assert [r["label"] for r in ledger["data"]] == ["2025-01", "2025-02", "2025-03"]
    assert [Decimal(r["pnl"]) for r in ledger["data"]] == [-200, 150, 150]
    assert [r["fee"] for r in ledger["data"]] == ["0.00", "0.00", "20.00"]
    assert [Decimal(r["cumulative_pnl"]) for r in ledger["data"]] == [-200, -50, 100]
    last = ledger["data"][-1]
    assert dec(last, "pnl_after_fee", "cumulative_fees", "cumulative_pnl_after_fees") == (
        130, 20, 80)
    assert ledger["summary"] == {"periods": 3, "hwm": "1100", "nav": "1100",
                                 "cumulative_pnl": "100", "cumulative_fees": "20.00",
                                 "cumulative_pnl_after_fees": "80"}


async def test_closing_the_same_period_twice_keeps_one_row(billing: Billing) -> None:
    fid = await follower(billing)
    await nav(billing, fid, "1000", day(0))
    await nav(billing, fid, "1200", day(1))
    first = await close(billing, fid, "P1", day(2))
    assert first.status_code == 201
    await nav(billing, fid, "5000", day(1.5))  # late data does not rewrite a closed period
    second = await close(billing, fid, "P1", day(2))
    assert second.status_code == 200
    assert {**second.json(), "created": True} == first.json()
    assert second.json()["created"] is False
    conflict = await close(billing, fid, "P1", day(2), rate="0.3")
    assert conflict.status_code == 409 and conflict.json()["code"] == "period_label_conflict"
    async with billing.container.uow() as uow:
        rows = await uow.fee_ledger.list("tnt_a", fid)
    assert len(rows) == 1 and rows[0].fee == Decimal(40)


async def test_period_rules_and_validation(billing: Billing) -> None:
    fid = await follower(billing)
    r = await close(billing, fid, "P0", day(1))
    assert r.status_code == 409 and r.json()["code"] == "nav_history_missing"
    await nav(billing, fid, "1000", day(0))
    assert (await close(billing, fid, "P1", day(2))).status_code == 201
    r = await close(billing, fid, "P2", day(1))
    assert r.status_code == 409 and r.json()["code"] == "period_out_of_order"
    r = await flow(billing, fid, "deposit", "10", day(1))
    assert r.status_code == 409 and r.json()["code"] == "period_closed"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for body, code in (({"kind": "gift", "amount": "1"}, "invalid_flow_kind"),
                       ({"kind": "deposit", "amount": "-5"}, "invalid_amount"),
                       ({"kind": "deposit", "amount": "5", "at": future}, "invalid_at"),
                       ({"kind": "deposit", "amount": "5", "at": "2025-01-01T00:00:00"},
                        "invalid_at"),
                       ({"kind": "deposit", "amount": "5", "fee": 1}, "unknown_field")):
        r = await billing.client.post(f"/v1/followers/{fid}/flows", headers=billing.auth(),
                                      json=body)
        assert r.status_code == 422 and r.json()["code"] == code, (body, r.text)
    for body, code in (({"label": "P3", "rate": "1.5", "end": day(3)}, "invalid_fee_rate"),
                       ({"label": "", "rate": "0.2", "end": day(3)}, "invalid_label"),
                       ({"label": "P3", "rate": "0.2", "end": future}, "invalid_end"),
                       ({"label": "P3", "rate": "0.2"}, "missing_field")):
        r = await billing.client.post(f"/v1/followers/{fid}/fees/close-period",
                                      headers=billing.auth(), json=body)
        assert r.status_code == 422 and r.json()["code"] == code, (body, r.text)
    r = await flow(billing, fid, "withdrawal", "5000", day(3))
    assert r.status_code == 201
    r = await close(billing, fid, "P3", day(4))
    assert r.status_code == 422 and r.json()["code"] == "withdrawal_exceeds_nav"


async def test_scopes_and_tenants(billing: Billing) -> None:
    fid = await follower(billing)
    await nav(billing, fid, "1000", day(0))
    r = await billing.client.post(f"/v1/followers/{fid}/flows",
                                  headers=billing.auth(scopes=("mirror:manage",)),
                                  json={"kind": "deposit", "amount": "1", "at": day(1)})
    assert r.status_code == 403
    r = await billing.client.post(f"/v1/followers/{fid}/fees/close-period",
                                  headers=billing.auth(scopes=("follower:manage",)),
                                  json={"label": "P1", "rate": "0.2", "end": day(2)})
    assert r.status_code == 403
    r = await billing.client.get(f"/v1/followers/{fid}/fees",
                                 headers=billing.auth(scopes=("vault:read",)))
    assert r.status_code == 403
    assert (await billing.client.get(f"/v1/followers/{fid}/fees",
                                     headers=billing.auth(scopes=("billing:read",)))
            ).status_code == 200
    # another tenant's follower does not exist for tnt_b
    assert (await flow(billing, fid, "deposit", "1", day(1), tenant="tnt_b")).status_code == 404
    assert (await close(billing, fid, "P1", day(2), tenant="tnt_b")).status_code == 404
    r = await billing.client.get(f"/v1/followers/{fid}/fees", headers=billing.auth("tnt_b"))
    assert r.status_code == 404 and r.json()["code"] == "follower_not_found"


async def test_fee_is_invoiced_through_stripe_once(billing: Billing) -> None:
    await subscribe(billing, "tnt_a", "pro")  # the tenant's Stripe customer pays fees
    fid = await follower(billing)
    await nav(billing, fid, "1000", day(0))
    await nav(billing, fid, "1234.56", day(1))
    invoices_before = len(billing.sim.invoices)

    # Stripe refuses once (say, a revoked key): the period is closed, the invoice is pending
    key = billing.sim.api_key
    billing.sim.api_key = "sk_test_rotated"
    r = await close(billing, fid, "2025-09", day(2))
    billing.sim.api_key = key
    assert r.status_code == 201, r.text
    assert r.json()["invoice"] is None
    assert r.json()["invoice_status"].startswith("pending_retry:")
    assert r.json()["fee"] == "46.91"  # 20 % of 234.56, floored to the cent

    # closing it again finishes the invoice
    r = await close(billing, fid, "2025-09", day(2))
    assert r.status_code == 200 and r.json()["invoice_status"] == "invoiced"
    ref = r.json()["invoice"]["ref"]
    inv = billing.sim.invoices[ref]
    assert inv["metadata"] == {"vanta_fee_key": f"fee:tnt_a:{fid}:2025-09"}
    assert [line["amount"] for line in inv["lines"]["data"]] == [4691]
    assert inv["status"] == "open"
    # and again: nothing new at Stripe
    r = await close(billing, fid, "2025-09", day(2))
    assert r.json()["invoice"]["ref"] == ref
    assert len(billing.sim.invoices) == invoices_before + 1
    fees = (await billing.client.get(f"/v1/followers/{fid}/fees",
                                     headers=billing.auth())).json()
    assert fees["data"][0]["invoice"] == {"provider": "stripe", "ref": ref}

    # Stripe collects it: the paid event names the fee and leaves the subscription alone
    sub_before = await billing.row()
    inv.update(status="paid", amount_paid=4691)
    r = await billing.stripe(billing.sim._event("invoice.paid", inv))
    assert r.json()["outcome"] == "fee_invoice_paid"
    assert await billing.row() == sub_before
    paid = await billing.audit("fee_invoice_paid")
    assert [(e.payload["follower_id"], e.payload["period_label"]) for e in paid] == [
        (fid, "2025-09")]

    # a period with no fee is never invoiced
    await nav(billing, fid, "1100", day(3))
    r = await close(billing, fid, "2025-10", day(4))
    assert r.json()["invoice_status"] == "no_fee"
    assert len(billing.sim.invoices) == invoices_before + 1


async def test_fee_is_invoiced_through_btcpay_for_a_btcpay_tenant(billing: Billing) -> None:
    plan = await btcpay_invoice(billing, "tnt_a")  # the tenant pays its plan with BTCPay
    await deliver_btcpay(billing, billing.btc.receive_payment(plan["invoice_id"], "19.00"))
    sub_before = await billing.row()
    assert sub_before is not None and sub_before.provider == "btcpay"
    fid = await follower(billing)
    await nav(billing, fid, "1000", day(0))
    await nav(billing, fid, "1234.56", day(1))
    stripe_invoices = len(billing.sim.invoices)

    r = await close(billing, fid, "2025-09", day(2))
    assert r.status_code == 201, r.text
    assert r.json()["invoice_status"] == "invoiced"
    assert r.json()["invoice"]["provider"] == "btcpay"
    ref = r.json()["invoice"]["ref"]
    inv = billing.btc.invoices[ref]
    assert (Decimal(inv["amount"]), inv["currency"]) == (Decimal("46.91"), "USD")
    md = inv["metadata"]
    assert (md["tenant_id"], md["kind"], md["follower_id"], md["period_label"]) \
        == ("tnt_a", "performance_fee", fid, "2025-09")
    assert md["orderId"] == md["fee_key"] == f"fee:tnt_a:{fid}:2025-09"
    # closing again reuses the stored invoice; Stripe is never asked
    r = await close(billing, fid, "2025-09", day(2))
    assert (r.status_code, r.json()["invoice"]["ref"]) == (200, ref)
    assert len(billing.sim.invoices) == stripe_invoices
    assert [i for i in billing.btc.invoices.values()
            if i["metadata"].get("kind") == "performance_fee"] == [inv]
    fees = (await billing.client.get(f"/v1/followers/{fid}/fees",
                                     headers=billing.auth())).json()
    assert fees["data"][0]["invoice"] == {"provider": "btcpay", "ref": ref}

    # BTCPay settles it: the fee is recorded paid and the plan's period is left alone
    outcomes = await deliver_btcpay(billing, billing.btc.receive_payment(ref, "46.91"))
    assert outcomes[-1] == "fee_invoice_paid"
    assert await billing.row() == sub_before
    paid = await billing.audit("fee_invoice_paid")
    assert [(e.payload["follower_id"], e.payload["period_label"]) for e in paid] == [
        (fid, "2025-09")]


async def test_fee_without_a_billing_customer_is_recorded_only(billing: Billing) -> None:
    fid = await follower(billing)
    await nav(billing, fid, "1000", day(0))
    await nav(billing, fid, "2000", day(1))
    r = await close(billing, fid, "P1", day(2))
    assert r.status_code == 201
    assert (r.json()["fee"], r.json()["invoice_status"]) == ("200.00", "no_billing_customer")
    assert not billing.sim.invoices


class _RacedUow:
    """A unit of work whose fee ledger shows no rows (``get``/``last``): it began before
    a concurrent close committed the same period, so its insert is the one that loses."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aenter__(self) -> _RacedUow:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        return _BlindLedger(value) if name == "fee_ledger" else value


class _BlindLedger:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def get(self, *args: Any) -> None:
        return None

    async def last(self, *args: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_close_losing_the_race_returns_the_winners_row(billing: Billing) -> None:
    """The SQL adapter reports the taken label as the application's ``BillingConflict``
    (not a driver error): the loser re-reads and answers with the stored period."""
    fid = await follower(billing)
    await nav(billing, fid, "1000", day(0))
    await nav(billing, fid, "1200", day(1))
    first = await close(billing, fid, "P1", day(2))
    assert first.status_code == 201, first.text
    opened: list[int] = []

    def raced_factory() -> Any:
        opened.append(1)  # only the first unit of work is blind; the re-read sees the row
        uow = billing.container.uow()
        return _RacedUow(uow) if len(opened) == 1 else uow

    async with billing.container.uow() as uow:
        stored = await uow.fee_ledger.get("tnt_a", fid, "P1")
        assert stored is not None
        with pytest.raises(BillingConflict):  # the port's error, not sqlalchemy's
            row = {f.name: getattr(stored, f.name) for f in dataclasses.fields(stored)}
            await uow.fee_ledger.add({k: v for k, v in row.items() if k != "id"})
    created, body = await close_fee_period(
        raced_factory, tenant_id="tnt_a", follower_id=fid, actor="user-1",
        raw={"label": "P1", "rate": "0.2", "end": day(2)})
    assert created is False
    assert body["fee"] == first.json()["fee"] and body["created"] is False
    async with billing.container.uow() as uow:
        assert len(await uow.fee_ledger.list("tnt_a", fid)) == 1
