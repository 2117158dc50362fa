"""Replay Studio's use case over the in-memory unit of work: the window, streaming in chunks,
the simulated follower's carried state (NAV-ratio sizing on the simulated NAV, a drawdown
stop that pauses it), the real follower beside it, the stored run, and refusals that store
nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.application.conftest import World
from vanta.application.studio import (
    StudioRequest,
    Window,
    get_run,
    parse_request,
    run_studio,
    studio_limits,
)
from vanta.domain.errors import NotEntitled, NotFound, ValidationFailed
from vanta.domain.studio_windows import PLAN_LIMITS

INST = PLAN_LIMITS["institutional"]


def request(*configs: dict[str, Any], **kw: Any) -> StudioRequest:
    args: dict[str, Any] = {"vault_id": "VA", "window": Window(last=100),
                            "starting_nav": Decimal(10_000), **kw}
    return parse_request(configs=list(configs) or [{"scale": "0.5"}], **args)


async def _orders(world: World, rows: list[tuple[str, str, str]], **extra: Any) -> None:
    for i, (side, qty, px) in enumerate(rows):
        world.clock.advance(3600)
        await world.submit(id=f"o{i}", side=side, qty=qty, ref_price=px, **extra)


async def _runs(world: World) -> list[Any]:
    async with world.uow() as u:
        return [e for e in await u.audit.all() if e.entity == "studio_run"]


async def test_orders_stream_in_chunks_and_the_run_is_stored(world: World) -> None:
    fid = await world.follower()
    await _orders(world, [("buy", "10", "100"), ("buy", "4", "110"), ("sell", "7", "120"),
                          ("sell", "7", "105"), ("buy", "2", "90")])
    seen: list[tuple[int, int]] = []
    result = await run_studio(world.uow(), tenant_id="tnt_a", req=request(follower_id=fid),
                              limits=INST, actor="ana", clock=world.clock,
                              progress=lambda d, t: seen.append((d, t)), chunk=2)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    doc = result.document
    assert doc["orders"] == len(doc["rows"]) == 5
    assert doc["differing_orders"] == [0]
    stored = await get_run(world.uow(), tenant_id="tnt_a", run_id=result.run_id)
    assert (stored.actor, stored.output_sha256, stored.output.encode()) == \
        ("ana", doc["sha256"], result.canonical)
    [event] = await _runs(world)
    assert (event.entity_id, event.actor, event.payload["orders"]) == (result.run_id, "ana", 5)
    with pytest.raises(NotFound):
        await get_run(world.uow(), tenant_id="tnt_b", run_id=result.run_id)


async def test_a_window_by_time_takes_only_its_orders(world: World) -> None:
    await _orders(world, [("buy", "10", "100")] * 6)
    start = world.clock() - timedelta(hours=2, minutes=30)
    result = await run_studio(world.uow(), tenant_id="tnt_a",
                              req=request(window=Window(start=start)), limits=INST,
                              actor="ana", clock=world.clock)
    assert result.document["orders"] == 3
    # to alone: from the vault's first order
    end = world.clock() - timedelta(hours=1, minutes=30)
    result = await run_studio(world.uow(), tenant_id="tnt_a",
                              req=request(window=Window(end=end)), limits=INST,
                              actor="ana", clock=world.clock)
    assert result.document["orders"] == 4  # six hourly orders, the last two after the end


async def test_nav_ratio_sizes_on_the_simulated_nav_and_a_drawdown_stop_pauses(
        world: World) -> None:
    await _orders(world, [("buy", "100", "100"), ("buy", "100", "50"), ("buy", "100", "50")],
                  manager_nav="100000")
    req = request({"label": "ratio", "scale_mode": "nav_ratio"},
                  {"label": "stop", "scale": "1", "protections": {"drawdown_stop_pct": "20"}},
                  starting_nav=Decimal(50_000))
    doc = (await run_studio(world.uow(), tenant_id="tnt_a", req=req, limits=INST,
                            actor="ana", clock=world.clock)).document
    ratio = [r["results"][0] for r in doc["rows"]]
    # 50,000 / 100,000 of 100; then the simulated NAV fell to 47,500 (50 × 50 lost)
    assert [x["qty"] for x in ratio] == ["50", "47", "47"]
    stop = [r["results"][1] for r in doc["rows"]]
    # 100 @ 100 then the price halves: NAV 45,000 from a 50,000 peak is a 10 % fall; the
    # second buy doubles the holding; at the third the fall is 10 %… not yet 20 %
    assert [x["skip"] for x in stop] == [None, None, None]
    deep = request({"scale": "4", "protections": {"drawdown_stop_pct": "20"}},
                   starting_nav=Decimal(50_000))
    doc = (await run_studio(world.uow(), tenant_id="tnt_a", req=deep, limits=INST,
                            actor="ana", clock=world.clock)).document
    # 400 @ 100 then 50: NAV 30,000, 40 % below the peak: stopped, and paused afterwards
    assert [r["results"][0]["skip"] for r in doc["rows"]] == [None, "drawdown_stop", "paused"]
    assert doc["summary"][0]["max_drawdown_pct"] == "40.0000"


@pytest.mark.parametrize(("kw", "error", "code"), [
    ({"window": Window(last=100_001)}, NotEntitled, "window_exceeds_plan"),
    ({"vault_id": "VB"}, NotFound, "vault_not_found"),
    ({"follower_id": "nobody"}, NotFound, "follower_not_found"),
])
async def test_refusals_store_nothing(world: World, kw: dict[str, Any], error: type[Exception],
                                      code: str) -> None:
    await _orders(world, [("buy", "10", "100")])
    with pytest.raises(error) as e:
        await run_studio(world.uow(), tenant_id="tnt_a", req=request(**kw), limits=INST,
                         actor="ana", clock=world.clock)
    assert getattr(e.value, "code", None) == code
    assert await _runs(world) == []


async def test_core_has_no_studio_and_pro_has_smaller_windows(world: World) -> None:
    with pytest.raises(NotEntitled):
        await studio_limits(world.uow(), "tnt_b")
    assert await studio_limits(world.uow(), "tnt_a") == INST
    with pytest.raises(NotEntitled) as e:
        PLAN_LIMITS["pro"].check_span(world.clock() - timedelta(days=93), None, world.clock())
    assert e.value.code == "window_exceeds_plan"


def test_bad_requests_are_refused_before_anything_runs() -> None:
    for kw, code in (({"starting_nav": Decimal(0)}, "invalid_nav"),
                     ({"window": Window(last=3, start=None, end=None), "configs": [{}] * 9},
                      "too_many_configs"),
                     ({"window": Window(start=None, end=None, last=0)}, "invalid_window")):
        with pytest.raises(ValidationFailed) as e:
            parse_request(**{"vault_id": "VA", "window": Window(last=5),
                             "starting_nav": Decimal(1), "configs": [{}], **kw})
        assert e.value.code == code
    with pytest.raises(ValidationFailed) as e:
        request({"scale": "0.5", "fees": {"rate": "0.2", "hurdle": "1"}})
    assert e.value.code == "unknown_field"
