"""Follower settings, previews, NAVs, overlays, maintenance, sync and replay over the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from tests.api.conftest import Api
from vanta.adapters.db.tables import audit_events, outbox, vault_overlays
from vanta.adapters.webhooks.sender import SendResult
from vanta.application.dispatch import Dispatcher
from vanta.application.overlays import revert_expired

HOOK = {"url": "https://follower.example/hook"}


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str], bytes]] = []

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        self.sent.append((url, headers, body))
        return SendResult(200, 1, "ok", None)


async def add_follower(api: Api, **settings: Any) -> str:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": HOOK, **settings})
    assert r.status_code == 201, r.text
    return r.json()["follower_id"]


async def order(api: Api, oid: str, **kw: Any) -> dict[str, Any]:
    body = {"id": oid, "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 100,
            "ref_price": 100, **kw}
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json=body)
    assert r.status_code in (200, 201), r.text
    out = r.json()
    kids = await api.client.get(out["links"]["children"], headers=api.auth())
    return {**out, "children": kids.json()["data"]}


def child_of(body: dict[str, Any], fid: str) -> dict[str, Any]:
    return next(c for c in body["children"] if c["follower_id"] == fid)


async def audit(api: Api, entity_id: str) -> list[dict[str, Any]]:
    async with api.container.engine.connect() as conn:
        rows = (await conn.execute(select(audit_events).where(
            audit_events.c.entity_id == entity_id).order_by(audit_events.c.seq))).all()
    return [dict(r._mapping) for r in rows]


async def test_patch_is_audited_with_before_and_after(api: Api) -> None:
    fid = await add_follower(api, scale="0.5")
    r = await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(),
                               json={"scale": "0.25", "kill_switch": True})
    assert r.status_code == 200 and r.json()["scale"] == "0.25" and r.json()["kill_switch"]
    ev = (await audit(api, fid))[-1]
    assert ev["action"] == "updated"
    assert ev["payload"]["before"]["scale"] == "0.5" and ev["payload"]["after"]["scale"] == "0.25"
    assert ev["payload"]["changed"] == ["kill_switch", "scale"]
    body = await order(api, "M-1")
    assert child_of(body, fid)["skip_reason"] == "kill_switch"


async def test_patch_refuses_bad_input_and_other_tenants(api: Api) -> None:
    fid = await add_follower(api)
    r = await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(), json={"scale": -1})
    assert r.status_code == 422 and r.json()["code"] == "invalid_scale"
    r = await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(), json={})
    assert r.status_code == 422 and r.json()["code"] == "empty_patch"
    r = await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(),
                               json={"mode": "capped", "max_pos_usd": 100})
    assert r.status_code == 422 and r.json()["code"] == "mode_not_in_plan"
    r = await api.client.patch(f"/v1/followers/{fid}", headers=api.auth("tnt_b"),
                               json={"scale": 2})
    assert r.status_code == 404 and r.json()["code"] == "follower_not_found"
    got = await api.client.get(f"/v1/followers/{fid}", headers=api.auth())
    assert got.json()["scale"] == "1"


async def test_setting_a_cap_turns_on_capped_mode(api: Api) -> None:
    fid = await add_follower(api, plan="pro")
    r = await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(),
                               json={"max_pos_usd": 550})
    assert r.json()["mode"] == "capped"
    body = await order(api, "M-1")
    assert child_of(body, fid)["qty"] == "5" and child_of(body, fid)["cap_applied"]


async def test_nav_ratio_and_preview_asof(api: Api) -> None:
    fid = await add_follower(api, scale_mode="nav_ratio")
    t1 = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    t2 = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for path, nav, at in [("/v1/vaults/VA/nav", 1_000_000, t1),
                          (f"/v1/followers/{fid}/nav", 10_000, t1),
                          (f"/v1/followers/{fid}/nav", 20_000, t2)]:
        r = await api.client.post(path, headers=api.auth(), json={"nav": nav, "as_of": at})
        assert r.status_code == 201, r.text
    q = {"symbol": "AAPL", "side": "buy", "qty": "1000", "ref_price": "10"}
    early = await api.client.get(f"/v1/followers/{fid}/preview", headers=api.auth(),
                                 params={**q, "asof": t1})
    late = await api.client.get(f"/v1/followers/{fid}/preview", headers=api.auth(),
                                params=q)
    assert early.json()["data"][0]["qty"] == "10"  # 1000 * 10k / 1M
    assert late.json()["data"][0]["qty"] == "20"
    assert (await order(api, "M-1", qty=1000))["children"][0]["qty"] == "20"
    bad = await api.client.get(f"/v1/followers/{fid}/preview", headers=api.auth(),
                               params={"asof": "soon"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_asof"


async def test_preview_of_past_orders_uses_current_settings(api: Api) -> None:
    fid = await add_follower(api, scale="0.5")
    await order(api, "M-1")
    await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(), json={"scale": "0.1"})
    r = await api.client.get(f"/v1/followers/{fid}/preview", headers=api.auth())
    assert [(x["id"], x["qty"]) for x in r.json()["data"]] == [("M-1", "10")]


async def test_drawdown_stop_pauses_the_follower(api: Api) -> None:
    fid = await add_follower(api, protections={"drawdown_stop_pct": 10})
    for nav in (100_000, 85_000):
        await api.client.post(f"/v1/followers/{fid}/nav", headers=api.auth(), json={"nav": nav})
    body = await order(api, "M-1")
    assert child_of(body, fid)["skip_reason"] == "drawdown_stop"
    f = (await api.client.get(f"/v1/followers/{fid}", headers=api.auth())).json()
    assert f["paused"] and f["paused_reason"] == "drawdown_stop"
    assert (await audit(api, fid))[-1]["action"] == "paused"
    assert child_of(await order(api, "M-2"), fid)["skip_reason"] == "paused"
    await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(), json={"paused": False})
    await api.client.post(f"/v1/followers/{fid}/nav", headers=api.auth(), json={"nav": 99_000})
    assert child_of(await order(api, "M-3"), fid)["qty"] == "100"


async def test_flip_overlay_applies_to_entitled_opted_in_followers_only(api: Api) -> None:
    core = await add_follower(api, overlay_opt_in=True)
    pro_out = await add_follower(api, plan="pro")
    pro_in = await add_follower(api, plan="pro", overlay_opt_in=True)
    r = await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                              json={"flip": {"amplify": "0.35", "ttl_minutes": 30},
                                    "persona": "Apollo"})
    assert r.status_code == 201, r.text
    body = await order(api, "M-1")
    assert child_of(body, core)["qty"] == "100"
    assert child_of(body, pro_out)["qty"] == "100"
    assert child_of(body, pro_in)["qty"] == "168"  # 100 * 1.35 * 1.25 = 168.75
    bad = await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                                json={"flip": {"amplify": 0.35, "ttl_minutes": 600}})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_ttl"


async def test_overlay_expiry_is_reverted_by_the_scheduler(api: Api) -> None:
    fid = await add_follower(api, plan="pro", overlay_opt_in=True)
    r = await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                              json={"persona": "Ares", "ttl_minutes": 1})
    oid = r.json()["overlay_id"]
    assert child_of(await order(api, "M-1"), fid)["qty"] == "50"
    later = datetime.now(UTC) + timedelta(minutes=2)
    assert await revert_expired(api.container.uow, clock=lambda: later) == 1
    assert await revert_expired(api.container.uow, clock=lambda: later) == 0
    async with api.container.engine.connect() as conn:
        state = (await conn.execute(select(vault_overlays.c.state).where(
            vault_overlays.c.overlay_id == oid))).scalar_one()
    assert state == "reverted"
    assert (await audit(api, "VA"))[-1]["action"] == "overlay_reverted"
    assert child_of(await order(api, "M-2"), fid)["qty"] == "100"


async def test_expired_overlay_is_ignored_even_before_the_scheduler_runs(api: Api) -> None:
    fid = await add_follower(api, plan="pro", overlay_opt_in=True)
    await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                          json={"persona": "Apollo", "ttl_minutes": 1})
    async with api.container.engine.begin() as conn:
        await conn.execute(update(vault_overlays).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert child_of(await order(api, "M-1"), fid)["qty"] == "100"


async def test_maintenance_holds_queued_deliveries_until_lifted(api: Api) -> None:
    await add_follower(api)
    await order(api, "M-1")
    r = await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                              json={"maintenance": {"enabled": True}})
    assert r.status_code == 201
    sender = FakeSender()
    d = Dispatcher(uow_factory=api.container.uow, sender=sender, secrets=api.container.secrets)
    await d.run_once()
    assert sender.sent == []
    r = await api.client.post("/v1/manager-orders", headers=api.auth(),
                              json={"id": "M-2", "vault_id": "VA", "symbol": "AAPL",
                                    "side": "buy", "qty": 1})
    assert r.status_code == 409 and r.json()["code"] == "vault_in_maintenance"
    await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                          json={"maintenance": {"enabled": False}})
    async with api.container.engine.begin() as conn:  # skip the 1 s re-check wait
        await conn.execute(update(outbox).values(available_at=datetime.now(UTC)))
    await d.run_once()
    assert len(sender.sent) == 1


async def test_shadow_and_skipped_children_are_never_queued(api: Api) -> None:
    shadow = await add_follower(api, mode="shadow")
    killed = await add_follower(api, kill_switch=True)
    live = await add_follower(api)
    body = await order(api, "M-1")
    assert child_of(body, shadow)["state"] == "shadow"
    async with api.container.engine.connect() as conn:
        keys = (await conn.execute(select(outbox.c.key))).scalars().all()
    assert keys == [child_of(body, live)["fo_id"]]
    assert child_of(body, killed)["fo_id"] not in keys


async def test_sync_on_follow_brings_new_follower_to_manager_positions(api: Api) -> None:
    await add_follower(api)
    await order(api, "M-1", qty=100)
    await order(api, "M-2", symbol="MSFT", qty=40, ref_price=400)
    await order(api, "M-3", symbol="MSFT", side="sell", qty=40)
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": HOOK, "scale": "0.3", "sync": True})
    assert r.status_code == 201, r.text
    synced = r.json()["sync_orders"]
    assert [(c["symbol"], c["qty"]) for c in synced] == [("AAPL", "30")]  # MSFT was closed
    listed = (await api.client.get("/v1/manager-orders", headers=api.auth())).json()["data"]
    assert [o["source"] for o in listed].count("sync") == 1
    # the sync order is the follower's, not the manager's: later exits still scale correctly
    body = await order(api, "M-4", side="sell", qty=50)
    assert child_of(body, r.json()["follower_id"])["qty"] == "15"


async def test_replay_reproduces_stored_children(api: Api) -> None:
    await add_follower(api, scale="0.37", plan="pro", max_pos_usd=2000)
    fid = await add_follower(api, scale="1.5")
    body = await order(api, "M-1", qty=33)
    await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(), json={"scale": "9"})
    r = await api.client.get(f"/v1/manager-orders/{body['mo_id']}/replay", headers=api.auth())
    assert r.status_code == 200 and r.json()["matches"], r.json()
    assert r.json()["children"] == 2


async def test_instruments_change_sizing(api: Api) -> None:
    fid = await add_follower(api, scale="0.5")
    admin = api.auth(scopes=("platform:admin",))
    denied = await api.client.put("/v1/instruments/default/AAPL", headers=api.auth(),
                                  json={"lot_step": 10})
    assert denied.status_code == 403, "tenants cannot change platform-wide instrument rules"
    r = await api.client.put("/v1/instruments/default/AAPL", headers=admin,
                             json={"lot_step": 10, "min_qty": 10})
    assert r.status_code == 200, r.text
    assert child_of(await order(api, "M-1", qty=58), fid)["qty"] == "20"
    bad = await api.client.put("/v1/instruments/default/AAPL", headers=admin,
                               json={"lot_step": 0})
    assert bad.status_code == 422


async def test_kill_switch_withdraws_queued_deliveries_at_once(api: Api) -> None:
    fid = await add_follower(api)
    other = await add_follower(api)
    body = await order(api, "M-1")
    await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(), json={"kill_switch": True})
    sender = FakeSender()
    d = Dispatcher(uow_factory=api.container.uow, sender=sender, secrets=api.container.secrets)
    await d.run_once()
    assert [h["webhook-id"] for _, h, _ in sender.sent] == [child_of(body, other)["fo_id"]]
    after = (await api.client.get(f"/v1/manager-orders/{body['mo_id']}",
                                  headers=api.auth())).json()
    killed = child_of(after, fid)
    assert killed["state"] == "cancelled" and killed["skip_reason"] == "kill_switch"
    assert after["state"] == "completed"


async def test_a_worker_lost_on_the_last_attempt_does_not_add_another(api: Api) -> None:
    await add_follower(api)
    body = await order(api, "M-1")
    fo = body["children"][0]["fo_id"]
    from vanta.adapters.db.tables import follower_orders
    budget = len(api.container.dispatcher.config.retry_schedule) + 1
    async with api.container.engine.begin() as conn:  # as if the last attempt's worker died
        await conn.execute(update(follower_orders).where(follower_orders.c.fo_id == fo)
                           .values(state="sent", dispatch_attempts=budget))
    sender = FakeSender()
    d = Dispatcher(uow_factory=api.container.uow, sender=sender, secrets=api.container.secrets)
    await d.run_once()
    assert sender.sent == []
    after = (await api.client.get(f"/v1/manager-orders/{body['mo_id']}",
                                  headers=api.auth())).json()
    child = next(c for c in after["children"] if c["fo_id"] == fo)
    assert child["state"] == "dlq" and "last attempt" in child["last_error"]


async def test_lease_must_leave_room_for_its_heartbeats() -> None:
    import pytest as _pytest

    from vanta.config import Settings
    with _pytest.raises(ValueError, match="lease"):
        Settings(dispatcher_lease_seconds=0.5, webhook_timeout_seconds=5)
    # renewed while the send runs: shorter than a send's timeout is fine
    assert Settings(dispatcher_lease_seconds=5, webhook_timeout_seconds=5)
