"""The read services behind the web app's pages, over the fakes: the sizing preview of a
settings change (nothing saved), delivery health per time bucket."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.application.conftest import World
from vanta.application.ops_series import dispatch_series, percentile
from vanta.application.preview import preview_change
from vanta.domain.errors import NotFound, ValidationFailed


async def test_preview_change_sizes_with_the_proposed_settings_and_saves_nothing(
        world: World) -> None:
    fid = await world.follower(scale="0.5")
    await world.submit(id="o1", qty="10")
    await world.submit(id="o2", qty="7")
    out = await preview_change(world.uow(), tenant_id="tnt_a", follower_id=fid,
                               raw={"scale": "0.3"}, asof=world.clock.now)
    assert sorted((r["id"], r["qty"], r["proposed_qty"]) for r in out["data"]) == \
        [("o1", "5", "3"), ("o2", "3", "2")]  # 7 x 0.3 = 2.1, floored to the lot step once
    async with world.uow() as u:
        row = await u.followers.get("tnt_a", fid)
    assert row is not None and str(row.scale) == "0.5"  # unchanged
    out = await preview_change(world.uow(), tenant_id="tnt_a", follower_id=fid,
                               raw={"kill_switch": True}, asof=world.clock.now)
    assert {r["proposed_skip_reason"] for r in out["data"]} == {"kill_switch"}


async def test_preview_change_validates_like_a_patch_and_scopes_by_tenant(
        world: World) -> None:
    fid = await world.follower()
    with pytest.raises(ValidationFailed) as e:
        await preview_change(world.uow(), tenant_id="tnt_a", follower_id=fid,
                             raw={"scale": "-1"}, asof=world.clock.now)
    assert e.value.code == "invalid_scale"
    with pytest.raises(NotFound):
        await preview_change(world.uow(), tenant_id="tnt_b", follower_id=fid,
                             raw={"scale": "1"}, asof=world.clock.now)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([10], 95) == 10
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95)) == (50, 95)


async def test_dispatch_series_buckets_latency_errors_retries_and_dead_letters(
        world: World) -> None:
    await world.follower()
    fid2 = await world.follower()
    s = await world.submit(id="o1")
    assert s.expansion is not None
    fo1, fo2 = (c.fo_id for c in s.expansion.children)
    t0 = world.clock.now
    async with world.uow() as u:
        await u.attempts.add_many([
            {"fo_id": fo1, "attempt_no": 1, "started_at": t0, "status_code": 200,
             "latency_ms": 40, "response_excerpt": None, "error": None, "outcome": "ack"},
            {"fo_id": fo2, "attempt_no": 1, "started_at": t0, "status_code": 503,
             "latency_ms": 10, "response_excerpt": None, "error": "busy",
             "outcome": "retry"},
            {"fo_id": fo2, "attempt_no": 2, "started_at": t0 + timedelta(minutes=40),
             "status_code": 503, "latency_ms": 30, "response_excerpt": None,
             "error": "busy", "outcome": "dlq"}])
        assert await u.child_orders.update(fo2, expect_state="pending", state="dlq",
                                           dead_lettered_at=t0 + timedelta(minutes=40))
        await u.commit()
    series = await dispatch_series(world.uow(), tenant_id="tnt_a",
                                   now=t0 + timedelta(minutes=59), window=timedelta(hours=1),
                                   buckets=2)
    first, second = series
    assert (first.attempts, first.p50_ms, first.p95_ms, first.error_rate, first.retries,
            first.dead_letters) == (2, 10, 40, 0.5, 0, 0)
    assert (second.attempts, second.p50_ms, second.error_rate, second.retries,
            second.dead_letters) == (1, 30, 1.0, 1, 1)
    other = await dispatch_series(world.uow(), tenant_id="tnt_b",
                                  now=t0 + timedelta(minutes=59), window=timedelta(hours=1))
    assert all(b.attempts == 0 and b.dead_letters == 0 for b in other)
    del fid2
