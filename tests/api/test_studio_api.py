"""Replay Studio over the API: a run against the recorded history of a vault, compared with
a real follower's children; stored, audited, fetched again byte for byte; bad input refused
with problem+json and nothing stored."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.api.conftest import Api
from vanta.domain.studio import ENGINE_VERSION

ORDERS = [("o1", "buy", "10", "100"), ("o2", "buy", "6", "110"), ("o3", "sell", "8", "120"),
          ("o4", "buy", "4", "90"), ("o5", "sell", "12", "95")]


async def _history(api: Api) -> str:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "label": "half", "scale": "0.5", "webhook": {"url": "https://half.example/h"}})
    assert r.status_code == 201, r.text
    fid = str(r.json()["follower_id"])
    for coid, side, qty, px in ORDERS:
        r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
            "id": coid, "vault_id": "VA", "symbol": "AAPL", "side": side, "qty": qty,
            "ref_price": px})
        assert r.status_code == 201, r.text
    return fid


def _run(**extra: Any) -> dict[str, Any]:
    return {"vault_id": "VA", "last": 100, "starting_nav": "10000",
            "configs": [{"label": "same", "scale": "0.5", "fees": {"rate": "0.2"}},
                        {"label": "quarter", "scale": "0.25"}], **extra}


async def _stored_runs(api: Api) -> int:
    async with api.container.uow() as uow:
        return sum(1 for e in await uow.audit.all() if e.entity == "studio_run")


async def test_a_run_compares_configurations_with_the_real_follower(api: Api) -> None:
    fid = await _history(api)
    r = await api.client.post("/v1/replay-studio/runs", headers=api.auth(),
                              json=_run(follower_id=fid))
    assert r.status_code == 201, r.text
    doc = r.json()
    assert r.headers["location"] == f"/v1/replay-studio/runs/{doc['run_id']}"
    assert doc["engine_version"] == ENGINE_VERSION and doc["orders"] == len(ORDERS)
    # the hash is of the canonical form of everything but run_id and the hash itself
    body = {k: v for k, v in doc.items() if k not in ("run_id", "sha256")}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canon.encode()).hexdigest() == doc["sha256"]
    # the configuration equal to the follower's reproduces its recorded children
    assert doc["differing_orders"][0] == 0
    assert doc["differing_orders"][1] > 0
    same, actual = doc["summary"][0], doc["actual"]
    assert [row["results"][0]["qty"] for row in doc["rows"]] == \
        [row["actual"]["qty"] for row in doc["rows"]] == ["5", "3", "4", "2", "6"]
    assert same["final_nav"] == actual["final_nav"]
    assert [row["diff"][1] for row in doc["rows"]] == ["-3", "-2", "-3", "-1", "-3"]
    assert doc["summary"][1]["label"] == "quarter"
    curve = doc["equity_curve"]
    assert curve["series"] == ["same", "quarter", "actual"]
    assert curve["points"][0] == [None, "10000", "10000", "10000"]
    assert curve["points"][-1] == [doc["rows"][-1]["at"], same["final_nav"],
                                   doc["summary"][1]["final_nav"], actual["final_nav"]]
    # fetched again: the same answer, and who ran it
    got = await api.client.get(f"/v1/replay-studio/runs/{doc['run_id']}", headers=api.auth())
    assert got.status_code == 200
    again = got.json()
    assert again.pop("actor") == "user-1" and again.pop("created_at")
    assert again == doc
    # the same input again: a new run, the same bytes and hash
    r2 = await api.client.post("/v1/replay-studio/runs", headers=api.auth(),
                               json=_run(follower_id=fid))
    assert r2.json()["sha256"] == doc["sha256"]
    assert r2.content.split(b",", 1)[1] == r.content.split(b",", 1)[1]
    async with api.container.uow() as uow:
        events = [e for e in await uow.audit.all() if e.entity == "studio_run"]
    assert [(e.entity_id, e.action, e.payload["sha256"]) for e in events] == [
        (doc["run_id"], "run", doc["sha256"]), (r2.json()["run_id"], "run", doc["sha256"])]


async def test_other_tenants_and_core_plans_see_nothing(api: Api) -> None:
    await _history(api)
    r = await api.client.post("/v1/replay-studio/runs", headers=api.auth(), json=_run())
    run_id = r.json()["run_id"]
    other = await api.client.get(f"/v1/replay-studio/runs/{run_id}", headers=api.auth("tnt_b"))
    assert other.status_code == 403  # Core: no Replay Studio at all
    narrowed = api.container.issuer.issue("n", "tnt_a", ["vault:read"], vault_ids=["VX"])
    hidden = await api.client.get(f"/v1/replay-studio/runs/{run_id}",
                                  headers={"Authorization": f"Bearer {narrowed}"})
    unknown = await api.client.get("/v1/replay-studio/runs/nope",
                                   headers={"Authorization": f"Bearer {narrowed}"})
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["code"] == "studio_run_not_found"
    core = await api.client.post("/v1/replay-studio/runs", headers=api.auth("tnt_b"),
                                 json=_run(vault_id="VB"))
    assert core.status_code == 403 and core.json()["code"] == "plan_lacks_feature"


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"last": 100_001}, 422, "invalid_window"),  # more than any plan allows
    ({"last": None, "from": "2024-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, 403,
     "window_exceeds_plan"),
    ({"last": 5, "from": "2024-01-01T00:00:00Z"}, 422, "invalid_window"),
    ({"last": None, "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 422,
     "invalid_window"),
    ({"vault_id": "VB"}, 404, "vault_not_found"),
    ({"vault_id": "nope"}, 404, "vault_not_found"),
    ({"follower_id": "nope"}, 404, "follower_not_found"),
    ({"configs": [{"mode": "capped"}]}, 422, "cap_required"),
    ({"configs": [{"mode": "capped", "max_pos_usd": "1000"}]}, 422, "mode_not_in_plan"),
    ({"configs": [{"scale": "0"}]}, 422, "invalid_scale"),
    ({"configs": [{"scale": "0.5", "fees": {"rate": "1.5"}}]}, 422, "invalid_fee_rate"),
    ({"configs": [{"scale": "0.1"}] * 9}, 422, "too_many_configs"),
    ({"configs": []}, 422, "too_many_configs"),
    ({"starting_nav": "0"}, 422, "invalid_nav"),
    ({"starting_nav": "-5"}, 422, "invalid_nav"),
])
async def test_bad_input_is_refused_and_nothing_is_stored(api: Api, change: dict[str, Any],
                                                          status: int, code: str) -> None:
    await _history(api)
    body = {k: v for k, v in {**_run(), **change}.items() if v is not None}
    r = await api.client.post("/v1/replay-studio/runs", headers=api.auth(), json=body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await _stored_runs(api) == 0
