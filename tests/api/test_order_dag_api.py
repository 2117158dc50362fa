"""GET /v1/manager-orders/{id}/dag: the order, its children and broker legs, attempts, fills
and audit events as nodes and edges under a stable dag_id, which webhook bodies carry too."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import Api
from tests.api.test_bridged import bridged, order, settle
from tests.api.test_delivery_api import Env, env  # noqa: F401  (the receiver fixture)
from vanta.domain.ids import dag_id_for
from vanta.receiving import verify


async def _dag(api: Api, mo_id: str, tenant: str = "tnt_a") -> Any:
    return await api.client.get(f"/v1/manager-orders/{mo_id}/dag", headers=api.auth(tenant))


async def test_the_dag_links_order_children_legs_attempts_fills_and_audit(api: Api) -> None:
    await bridged(api)
    hook = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "webhook": {"url": "https://follower.example/hook"}})
    assert hook.status_code == 201
    body = await order(api, "M-1")
    mo_id = body["mo_id"]
    bridged_fo = next(c["fo_id"] for c in body["children"]
                      if c["follower_id"] != hook.json()["follower_id"])
    await settle(api, bridged_fo)
    r = await _dag(api, mo_id)
    assert r.status_code == 200, r.text
    dag = r.json()
    assert dag["dag_id"] == dag_id_for(mo_id) and dag["mo_id"] == mo_id
    nodes = {n["id"]: n for n in dag["nodes"]}
    kinds = sorted({n["kind"] for n in dag["nodes"]})
    assert kinds == ["attempt", "audit_event", "child_order", "fill", "leg", "manager_order"]
    assert all(e["from"] in nodes and e["to"] in nodes for e in dag["edges"])
    mo_node = nodes[f"mo:{mo_id}"]
    assert mo_node["at"]["created_at"] and mo_node["state"]
    edges = {(e["from"], e["kind"], e["to"]) for e in dag["edges"]}
    for c in body["children"]:
        assert (f"mo:{mo_id}", "expanded_to", f"fo:{c['fo_id']}") in edges
    leg = f"leg:{bridged_fo}"
    assert nodes[leg]["attrs"]["broker_order_ref"]
    assert (f"fo:{bridged_fo}", "submitted_as", leg) in edges
    fills = [e for e in dag["edges"] if e["kind"] == "filled"]
    assert fills and all(e["from"] == leg and e["at"] for e in fills)
    assert sum(float(nodes[e["to"]]["attrs"]["qty"]) for e in fills) == 40
    assert nodes[f"fo:{bridged_fo}"]["state"] == "confirmed"
    attempts = [e for e in dag["edges"] if e["kind"] == "attempted"]
    assert attempts and all(e["at"] and e["state"] for e in attempts)
    audited = [e for e in dag["edges"] if e["kind"] == "audited"]
    actions = {nodes[e["to"]]["state"] for e in audited if e["from"] == f"mo:{mo_id}"}
    assert "received" in actions
    child_actions = {nodes[e["to"]]["state"] for e in audited
                     if e["from"] == f"fo:{bridged_fo}"}
    assert any(a.startswith("created:") for a in child_actions)
    # the delivery record, settled in a batch event, hangs off the child after "created"
    records = [nodes[e["to"]] for e in audited if e["from"] == f"fo:{bridged_fo}"
               and "leaf" in nodes[e["to"]]["attrs"]]
    assert [n["state"] for n in records] == ["dispatch:ack"]
    assert len(records[0]["attrs"]["leaf_hash"]) == 64 and records[0]["attrs"]["batch_event"]
    # audit nodes carry their chain hashes but no payload (other followers' inputs)
    ev = nodes[audited[0]["to"]]
    assert len(ev["attrs"]["hash"]) == 64 and "payload" not in ev["attrs"]
    again = (await _dag(api, mo_id)).json()
    assert again["dag_id"] == dag["dag_id"]


async def test_another_tenants_order_is_404(api: Api) -> None:
    await bridged(api)
    mo_id = (await order(api, "M-1"))["mo_id"]
    r = await _dag(api, mo_id, tenant="tnt_b")
    assert r.status_code == 404 and r.json()["code"] == "manager_order_not_found"
    unknown = await _dag(api, "00000000-0000-5000-8000-000000000000")
    assert unknown.status_code == 404 and unknown.json()["code"] == "manager_order_not_found"


async def test_the_webhook_body_carries_the_same_dag_id(env: Env) -> None:  # noqa: F811
    f = await env.follower("a")
    r = await env.http.post("/v1/manager-orders", json={
        "id": "M-2", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10,
        "dag_id": "upstream-7"})
    assert r.status_code == 201, r.text
    mo_id = r.json()["mo_id"]
    await env.drain()
    [(_, headers, raw)] = env.script.seen
    verify(headers, raw, f["webhook_secret"], require="both")  # still signed as before
    audit = json.loads(raw)["audit"]
    dag = (await env.http.get(f"/v1/manager-orders/{mo_id}/dag")).json()
    assert audit["dag_id"] == dag_id_for(mo_id) == dag["dag_id"]
    assert audit["upstream_dag_id"] == "upstream-7"


async def test_a_large_order_comes_in_pages_of_children(api: Api) -> None:
    for _ in range(3):
        r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
            "webhook": {"url": "https://follower.example/hook"}})
        assert r.status_code == 201, r.text
    body = await order(api, "M-3")
    mo_id = body["mo_id"]
    whole = (await _dag(api, mo_id)).json()  # default limit: every child of a small order
    assert whole["children"] == 3 and whole["next_cursor"] is None
    seen: list[str] = []
    url = f"/v1/manager-orders/{mo_id}/dag?limit=2"
    while True:
        page = (await api.client.get(url, headers=api.auth())).json()
        assert page["dag_id"] == dag_id_for(mo_id) and page["children"] <= 2
        ids = {n["id"] for n in page["nodes"]}
        assert f"mo:{mo_id}" in ids
        assert all(e["from"] in ids and e["to"] in ids for e in page["edges"])
        seen += [n["id"] for n in page["nodes"] if n["kind"] == "child_order"]
        if page["next_cursor"] is None:
            break
        url = f"/v1/manager-orders/{mo_id}/dag?limit=2&cursor={page['next_cursor']}"
    expected = [n["id"] for n in whole["nodes"] if n["kind"] == "child_order"]
    assert seen == expected and len(seen) == 3
    bad = await api.client.get(f"/v1/manager-orders/{mo_id}/dag?cursor=nope",
                               headers=api.auth())
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"
    too_many = await api.client.get(f"/v1/manager-orders/{mo_id}/dag?limit=1001",
                                    headers=api.auth())
    assert too_many.status_code == 422
