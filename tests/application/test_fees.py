"""Performance fees over the in-memory billing repositories: flows, closing periods against
the high-water mark, closing twice, losing a close race, invoicing once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.application.conftest import World
from tests.fakes.billing import FakeStripe
from vanta.application.fees_service import close_fee_period, fee_ledger, record_flow
from vanta.application.navs import record_nav
from vanta.domain.errors import Conflict, NotFound


def day(w: World, n: float) -> str:
    return (w.clock.now - timedelta(days=30) + timedelta(days=n)).isoformat()


async def _nav(w: World, fid: str, nav: str, n: float) -> None:
    await record_nav(w.uow(), tenant_id="tnt_a", entity="follower", entity_id=fid,
                     raw={"nav": nav, "as_of": day(w, n)}, actor="ops", clock=w.clock)


async def _close(w: World, fid: str, label: str, n: float, rate: str = "0.2",
                 factory: Any = None, stripe: Any = None) -> tuple[bool, dict[str, Any]]:
    return await close_fee_period(factory or w.db.uow, tenant_id="tnt_a", follower_id=fid,
                                  raw={"label": label, "rate": rate, "end": day(w, n)},
                                  actor="ops", stripe=stripe, clock=w.clock)


async def test_fees_are_charged_only_above_the_high_water_mark(world: World) -> None:
    fid = await world.follower()
    for nav, n in (("1000", 0), ("1200", 1), ("1100", 3), ("1300", 5)):
        await _nav(world, fid, nav, n)
    results = [await _close(world, fid, label, n) for label, n in (("P1", 2), ("P2", 4),
                                                                   ("P3", 6))]
    assert [(c, b["fee"], b["hwm_after"]) for c, b in results] \
        == [(True, "40.00", "1200"), (True, "0.00", "1200"), (True, "20.00", "1300")]
    ledger = await fee_ledger(world.uow(), tenant_id="tnt_a", follower_id=fid)
    assert ledger["summary"]["cumulative_fees"] == "60.00"
    assert [r["label"] for r in ledger["data"]] == ["P1", "P2", "P3"]


async def test_deposits_are_not_profit(world: World) -> None:
    fid = await world.follower()
    await _nav(world, fid, "1000", 0)
    out = await record_flow(world.uow(), tenant_id="tnt_a", follower_id=fid,
                            raw={"kind": "deposit", "amount": "500", "at": day(world, 1)},
                            actor="ops", clock=world.clock)
    assert out["amount"] == "500" and isinstance(out["id"], int)
    await _nav(world, fid, "1600", 2)
    _, body = await _close(world, fid, "P1", 3)
    assert (body["pnl"], body["net_flows"], body["fee"]) == ("100", "500", "20.00")


async def test_closing_a_label_again_returns_it_and_another_rate_is_a_conflict(world: World
                                                                               ) -> None:
    fid = await world.follower()
    await _nav(world, fid, "1000", 0)
    await _nav(world, fid, "1100", 1)
    first = await _close(world, fid, "P1", 2)
    again = await _close(world, fid, "P1", 2)
    assert (first[0], again[0]) == (True, False) and first[1]["fee"] == again[1]["fee"]
    with pytest.raises(Conflict) as e:
        await _close(world, fid, "P1", 2, rate="0.3")
    assert e.value.code == "period_label_conflict"


async def test_periods_close_in_order_and_need_a_nav(world: World) -> None:
    fid = await world.follower()
    with pytest.raises(Conflict) as e:
        await _close(world, fid, "P0", 1)
    assert e.value.code == "nav_history_missing"
    await _nav(world, fid, "1000", 0)
    await _close(world, fid, "P1", 5)
    with pytest.raises(Conflict) as e:
        await _close(world, fid, "P2", 4)
    assert e.value.code == "period_out_of_order"
    with pytest.raises(Conflict) as e:  # a flow may not be back-dated into a closed period
        await record_flow(world.uow(), tenant_id="tnt_a", follower_id=fid,
                          raw={"kind": "deposit", "amount": "1", "at": day(world, 3)},
                          actor="ops", clock=world.clock)
    assert e.value.code == "period_closed"
    with pytest.raises(NotFound):
        await close_fee_period(world.db.uow, tenant_id="tnt_b", follower_id=fid,
                               raw={"label": "P9", "rate": "0.2", "end": day(world, 9)},
                               actor="ops", clock=world.clock)


class _BlindLedger:
    """Reads that miss the period a concurrent close is about to commit."""

    def __init__(self, real: Any) -> None:
        self._real = real

    async def get(self, *a: Any) -> None:
        return None

    async def last(self, *a: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_a_close_losing_the_race_returns_the_winners_row(world: World) -> None:
    """Ported from tests/api/test_fees_api.py: the fake raises BillingConflict on the taken
    label, as the SQL adapter does, and the loser re-reads in a fresh unit of work."""
    fid = await world.follower()
    await _nav(world, fid, "1000", 0)
    await _nav(world, fid, "1200", 1)
    _, winner = await _close(world, fid, "P1", 2)
    opened: list[int] = []

    class Raced:
        def __init__(self) -> None:
            self._uow = world.uow()

        async def __aenter__(self) -> Any:
            u = await self._uow.__aenter__()
            u.fee_ledger = _BlindLedger(u.fee_ledger)
            return u

        async def __aexit__(self, *exc: Any) -> None:
            await self._uow.__aexit__(*exc)

    def factory() -> Any:
        opened.append(1)
        return Raced() if len(opened) == 1 else world.uow()
    created, body = await _close(world, fid, "P1", 2, factory=factory)
    assert (created, body["fee"]) == (False, winner["fee"])
    async with world.uow() as u:
        assert len(await u.fee_ledger.list("tnt_a", fid)) == 1


async def test_a_fee_is_invoiced_once_to_the_tenants_stripe_customer(world: World) -> None:
    fid = await world.follower()
    stripe = FakeStripe(clock=world.clock)
    customer = stripe.add_customer()
    async with world.uow() as u:
        await u.subscriptions.replace("tnt_a", {
            "subscription_id": "s1", "tenant_id": "tnt_a", "plan_id": "institutional",
            "status": "active", "entitlements": {}, "created_at": world.clock.now,
            "provider": "stripe", "customer_ref": customer})
        await u.commit()
    await _nav(world, fid, "1000", 0)
    await _nav(world, fid, "1250.50", 1)
    _, body = await _close(world, fid, "P1", 2, stripe=stripe)
    _, again = await _close(world, fid, "P1", 2, stripe=stripe)
    assert stripe.calls == [("create_invoice_for_fee", {"customer_ref": customer,
                                                        "amount_cents": 5010,
                                                        "currency": "usd"})]
    [(key, (_, invoice))] = stripe.invoices.items()
    assert key == f"fee:tnt_a:{fid}:P1"
    assert body["invoice"] == {"provider": "stripe", "ref": invoice.invoice_ref}
    assert (body["invoice_status"], again["invoice_status"]) == ("invoiced", "invoiced")
    assert Decimal(body["fee"]) == Decimal("50.10")
