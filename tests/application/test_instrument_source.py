"""Orders for a symbol without an instrument rule: sized on the built-in default and marked
so on the order, or refused with ``unknown_instrument`` when rules are required."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.application.conftest import World
from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.domain.errors import ValidationFailed


async def _rule(w: World, symbol: str = "AAPL", venue: str = "default") -> None:
    async with w.uow() as u:
        await u.instruments.upsert({
            "symbol": symbol, "venue": venue, "lot_step": Decimal(5), "min_qty": Decimal(5),
            "min_notional": Decimal(0), "fractional_step": None,
            "updated_at": datetime(2026, 1, 1, tzinfo=UTC)})
        await u.commit()


async def _submit(w: World, *, require: bool, **raw: Any) -> Any:
    body = {"vault_id": "VA", "id": "o-1", "symbol": "AAPL", "side": "buy", "qty": "10",
            "ref_price": "100", **raw}
    return await submit_manager_order(w.uow(), tenant_id="tnt_a",
                                      order=parse_order_input(body), source="api",
                                      actor="manager", clock=w.clock,
                                      require_instrument=require)


@pytest.fixture
def w(world: World) -> World:
    return world


async def _stored(w: World, mo_id: str) -> dict[str, Any]:
    async with w.uow() as u:
        row = await u.manager_orders.get("tnt_a", mo_id)
        events = await u.audit.all()
    assert row is not None and row.snapshot is not None
    received = [e for e in events if e.action == "received" and e.entity_id == mo_id]
    assert received[0].payload["instrument_source"] == row.snapshot["instrument_source"]
    return dict(row.snapshot)


async def test_an_order_without_a_rule_is_sized_on_the_default_and_says_so(w: World) -> None:
    await w.follower(scale="0.7")
    sub = await _submit(w, require=False)
    snap = await _stored(w, sub.order.mo_id)
    assert snap["instrument_source"] == "default"
    assert sub.expansion.children[0].qty == Decimal(7)  # whole shares: the default step


async def test_an_order_with_a_rule_is_sized_on_it_and_says_so(w: World) -> None:
    await w.follower(scale="0.7")
    await _rule(w)
    sub = await _submit(w, require=True)
    snap = await _stored(w, sub.order.mo_id)
    assert snap["instrument_source"] == "catalogue"
    assert sub.expansion.children[0].qty == Decimal(5)  # floored to the rule's lot of 5


async def test_rules_required_refuses_an_unknown_symbol_and_writes_nothing(w: World) -> None:
    await w.follower()
    await _rule(w, symbol="MSFT")
    with pytest.raises(ValidationFailed) as err:
        await _submit(w, require=True)
    assert err.value.code == "unknown_instrument" and err.value.field == "symbol"
    async with w.uow() as u:
        assert await u.manager_orders.get("tnt_a", "VA:o-1") is None
        assert await u.outbox.pending_count("mirror.dispatch") == 0
        assert not [e for e in await u.audit.all() if e.entity == "manager_order"]


async def test_a_rule_at_another_venue_does_not_count(w: World) -> None:
    await w.follower()
    await _rule(w, venue="nasdaq")
    with pytest.raises(ValidationFailed):
        await _submit(w, require=True, venue="nyse")
