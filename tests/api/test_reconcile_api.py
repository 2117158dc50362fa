"""Reconciliation over HTTP: a dry run reports and writes no order, an applied run dispatches
fix-ups and is read back, position reports and thresholds, and the refusals as problem+json
(threshold out of range, a vault in maintenance, another tenant's run)."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import Api

PROBLEM = "application/problem+json"


async def _setup(api: Api) -> str:
    """A follower (scale 0.5, NAV 10,000) whose child of a 10 AAPL buy dead-lettered."""
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "webhook": {"url": "https://f.example/h"}, "scale": "0.5"})
    assert r.status_code == 201, r.text
    fid = str(r.json()["follower_id"])
    r = await api.client.post(f"/v1/followers/{fid}/nav", headers=api.auth(),
                              json={"nav": "10000"})
    assert r.status_code == 201, r.text
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": "o1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10,
        "ref_price": "100"})
    assert r.status_code == 201, r.text
    kids = await api.client.get(r.json()["links"]["children"], headers=api.auth())
    async with api.container.uow() as u:
        for c in kids.json()["data"]:
            await u.child_orders.update(c["fo_id"], expect_state="pending", state="dlq")
        await u.commit()
    return fid


async def _reconcile(api: Api, body: Any = None, vault: str = "VA", **kw: Any) -> Any:
    return await api.client.post(f"/v1/vaults/{vault}/reconcile", headers=api.auth(**kw),
                                 json=body if body is not None else {})


async def test_a_dry_run_by_default_then_applied_fixups(api: Api) -> None:
    fid = await _setup(api)
    dry = await api.client.post("/v1/vaults/VA/reconcile", headers=api.auth())  # no body
    assert dry.status_code == 201, dry.text
    assert dry.json()["dry_run"] is True
    assert [(f["follower_id"], f["side"], f["qty"], f["fo_id"]) for f in dry.json()["fixups"]] \
        == [(fid, "buy", "5", None)]
    applied = await _reconcile(api, {"dry_run": False})
    assert applied.status_code == 201, applied.text
    fo_id = applied.json()["fixups"][0]["fo_id"]
    r = await api.client.get(f"/v1/follower-orders?follower_id={fid}", headers=api.auth())
    kids = {c["fo_id"]: c for c in r.json()["data"]}
    assert kids[fo_id]["state"] == "pending" and kids[fo_id]["qty"] in ("5", 5)
    run = await api.client.get(f"/v1/reconciliations/{applied.json()['id']}",
                               headers=api.auth())
    assert run.status_code == 200 and run.json() == applied.json()
    # the fix-up is in flight: a second run orders nothing
    again = await _reconcile(api, {"dry_run": False})
    assert again.json()["fixups"] == []


async def test_reported_positions_and_thresholds(api: Api) -> None:
    fid = await _setup(api)
    r = await api.client.post(f"/v1/followers/{fid}/positions", headers=api.auth(),
                              json={"positions": {"AAPL": "5"}})
    assert r.status_code == 201 and r.json()["positions"] == {"AAPL": "5"}
    report = (await _reconcile(api)).json()
    assert report["fixups"] == [] and report["followers"][0]["positions_source"] == "reported"
    r = await api.client.put("/v1/vaults/VA/reconcile-threshold", headers=api.auth(),
                             json={"threshold_bps": 120})
    assert r.status_code == 200 and r.json() == {"vault_id": "VA", "threshold_bps": 120}
    r = await api.client.put(f"/v1/followers/{fid}/reconcile-threshold", headers=api.auth(),
                             json={"threshold_bps": 30})
    assert r.json()["effective_threshold_bps"] == 30
    assert (await _reconcile(api)).json()["followers"][0]["threshold_bps"] == 30


async def test_bad_input_is_a_problem_and_dispatches_nothing(api: Api) -> None:
    fid = await _setup(api)
    for path in ("/v1/vaults/VA/reconcile-threshold",
                 f"/v1/followers/{fid}/reconcile-threshold"):
        for bad in (-1, 10_001, "50", 1.5):
            r = await api.client.put(path, headers=api.auth(), json={"threshold_bps": bad})
            assert r.status_code == 422, (path, bad, r.text)
            assert r.headers["content-type"].startswith(PROBLEM)
            assert r.json()["code"] == "invalid_threshold"
    r = await api.client.post(f"/v1/followers/{fid}/positions", headers=api.auth(),
                              json={"positions": {"AAPL": 1.5}})
    assert r.status_code == 422 and r.json()["code"] == "invalid_positions"
    r = await _reconcile(api, {"dry_run": "no"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_boolean"
    r = await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                              json={"maintenance": {"enabled": True}})
    assert r.status_code == 201, r.text
    async with api.container.uow() as u:
        before = await u.outbox.pending_count("mirror.dispatch")
    r = await _reconcile(api, {"dry_run": False})
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "vault_in_maintenance"
    async with api.container.uow() as u:
        assert await u.outbox.pending_count("mirror.dispatch") == before


async def test_other_tenants_vaults_and_runs_are_not_found(api: Api) -> None:
    await _setup(api)
    run = (await _reconcile(api)).json()
    r = await api.client.get(f"/v1/reconciliations/{run['id']}", headers=api.auth("tnt_b"))
    assert r.status_code == 404 and r.json()["code"] == "reconciliation_not_found"
    r = await _reconcile(api, vault="VA", tenant="tnt_b")
    assert r.status_code == 404 and r.json()["code"] == "vault_not_found"


async def test_a_followers_token_sees_its_own_fixups_and_lines_only(api: Api) -> None:
    mine = await _setup(api)
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "webhook": {"url": "https://g.example/h"}, "scale": "2"})
    other = str(r.json()["follower_id"])
    await api.client.post(f"/v1/followers/{other}/nav", headers=api.auth(),
                          json={"nav": "10000"})
    run = (await _reconcile(api, {"dry_run": False})).json()
    assert {f["follower_id"] for f in run["fixups"]} == {mine, other}
    token = api.container.issuer.issue("f-user", "tnt_a", ("vault:read", "orders:read"),
                                       follower_id=mine)
    head = {"Authorization": f"Bearer {token}"}
    seen = (await api.client.get(f"/v1/reconciliations/{run['id']}", headers=head)).json()
    assert {f["follower_id"] for f in seen["fixups"]} == {mine}
    assert other not in json.dumps(seen)
    assert seen["summary"]["fixups"] == 1 and run["summary"]["fixups"] == 2
    listed = (await api.client.get("/v1/manager-orders", headers=head)).json()["data"]
    fixup_orders = [o for o in listed if o["source"] == "reconcile"]
    assert len(fixup_orders) == 1 and other not in json.dumps(listed)
    theirs = next(f for f in run["fixups"] if f["follower_id"] == other)
    async with api.container.uow() as u:
        child = await u.child_orders.get("tnt_a", theirs["fo_id"])
    assert child is not None
    r = await api.client.get(f"/v1/manager-orders/{child.mo_id}", headers=head)
    assert r.status_code == 404 and r.json()["code"] == "manager_order_not_found"
