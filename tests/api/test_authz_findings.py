"""Regression tests for the audit's authorization findings: redelivery outside the token's
vaults, other followers in a follower's feed and order answers, and 404s that told a hidden
object from a missing one."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.authz_world import CORE, SIDE, Who, World, build_world
from tests.api.conftest import Api
from vanta.application.principal import Principal
from vanta.application.snapshots import narrow_snapshot

NARROWED_OPS = Who("ops-narrowed-to-core", "ops", vaults=frozenset({CORE}))
FOLLOWER = Who("follower", "follower", follower="core1")


def _auth(api: Api, who: Who, w: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token(api, w)}"}


async def _state(api: Api, fo_id: str) -> str:
    async with api.container.uow(readonly=True) as uow:
        row = await uow.child_orders.get("tnt_a", fo_id)
    assert row is not None
    return row.state.value


def _events(r: httpx.Response) -> list[dict[str, Any]]:
    out = []
    for block in r.text.replace("\r\n", "\n").split("\n\n"):
        data = [ln[5:].strip() for ln in block.split("\n") if ln.startswith("data:")]
        if data:
            out.append(json.loads("\n".join(data)))
    return out


async def test_redelivery_by_id_ignores_children_outside_the_tokens_vaults(api: Api) -> None:
    w = await build_world(api)
    h = _auth(api, NARROWED_OPS, w)
    foreign, unknown = w["side-1-side1"], "00000000-0000-5000-8000-000000000000"
    r = await api.client.post("/v1/dead-letters/redeliver", headers=h, json={"fo_ids": [foreign]})
    assert r.status_code == 200, r.text
    assert r.json()["requeued"] == []
    assert await _state(api, foreign) == "dlq", "the other vault's dead letter stays parked"
    u = await api.client.post("/v1/dead-letters/redeliver", headers=h, json={"fo_ids": [unknown]})
    assert r.json() == json.loads(u.text.replace(unknown, foreign)), \
        "a hidden child is reported exactly like an unknown id"
    assert r.json()["not_found"] == [foreign]


async def test_redelivery_since_requeues_only_the_tokens_vaults(api: Api) -> None:
    w = await build_world(api)
    r = await api.client.post("/v1/dead-letters/redeliver", headers=_auth(api, NARROWED_OPS, w),
                              json={"since": "2000-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["requeued"]) == sorted([w["core-1-core1"], w["core-1-core2"]])
    assert await _state(api, w["side-1-side1"]) == "dlq"


async def test_follower_redelivery_is_limited_to_its_own_follower(api: Api) -> None:
    w = await build_world(api)
    # the follower role cannot redeliver; a machine token narrowed to one follower can
    tok = api.container.issuer.issue("svc", "tnt_a", ["mirror:manage"],
                                     follower_id=w["core1"])
    r = await api.client.post("/v1/dead-letters/redeliver",
                              headers={"Authorization": f"Bearer {tok}"},
                              json={"since": "2000-01-01T00:00:00Z"})
    assert r.json()["requeued"] == [w["core-1-core1"]]
    assert await _state(api, w["core-1-core2"]) == "dlq"


async def test_a_followers_feed_holds_no_other_follower(api: Api) -> None:
    w = await build_world(api)
    r = await api.client.get("/v1/feed?follow=false", headers=_auth(api, FOLLOWER, w))
    assert r.status_code == 200
    others = {w["core2"], w["core3"], w["side1"]}
    assert not {o for o in others if o in r.text}, "another follower's id is in the feed"
    received = [e for e in _events(r) if e["action"] == "received" and e.get("snapshot")]
    assert received, "the follower still sees its vault's manager orders"
    held = [e["snapshot"]["positions"] for e in received if e["snapshot"]["positions"]]
    assert held and all(set(p) == {w["core1"]} for p in held), \
        "its own position stays in the snapshot, no one else's"


async def test_a_followers_order_answers_hold_no_other_follower(api: Api) -> None:
    w = await build_world(api)
    h = _auth(api, FOLLOWER, w)
    listed = await api.client.get("/v1/manager-orders", headers=h)
    assert w["sync-core3"] not in listed.text, "another follower's sync order is not listed"
    assert w["core-2"] in listed.text
    one = await api.client.get(f"/v1/manager-orders/{w['sync-core3']}", headers=h)
    assert one.status_code == 404 and one.json()["code"] == "manager_order_not_found"
    mo = (await api.client.get(f"/v1/manager-orders/{w['core-2']}", headers=h)).json()
    assert [c["follower_id"] for c in mo["children"]] == [w["core1"]]


async def test_a_follower_does_not_see_the_size_of_its_vaults_book(api: Api) -> None:
    w = await build_world(api)
    mine = await api.client.get(f"/v1/vaults/{CORE}", headers=_auth(api, FOLLOWER, w))
    assert mine.status_code == 200 and "follower_count" not in mine.json()
    owner = await api.client.get(f"/v1/vaults/{CORE}", headers=api.auth())
    assert owner.json()["follower_count"] == 3


async def test_replay_of_a_hidden_order_answers_like_an_unknown_one(api: Api) -> None:
    w = await build_world(api)
    h = _auth(api, Who("auditor-core", "auditor", vaults=frozenset({CORE})), w)
    hidden, unknown = w["side-2"], "00000000-0000-5000-8000-00000000abcd"
    r = await api.client.get(f"/v1/manager-orders/{hidden}/replay", headers=h)
    u = await api.client.get(f"/v1/manager-orders/{unknown}/replay", headers=h)
    assert r.status_code == u.status_code == 404
    assert SIDE not in r.text, "the hidden order's vault is not named"
    assert r.json() == json.loads(u.text.replace(unknown, hidden))
    assert r.json()["code"] == "manager_order_not_found"


def test_narrow_snapshot_keeps_only_the_followers_the_caller_may_see() -> None:
    stored = {"price": "100", "manager_position": "7", "overlay": {},
              "positions": {"f1": "3", "f2": "4"}, "navs": {"f1": ["1", "1", "1"],
                                                            "f2": ["2", "2", "2"]},
              "followers": [{"follower_id": "f1"}, {"follower_id": "f2"}],
              "instrument": {"symbol": "AAPL"}}
    mine = narrow_snapshot(Principal("s", "t", frozenset(), follower_id="f1"), stored)
    assert mine["positions"] == {"f1": "3"} and list(mine["navs"]) == ["f1"]
    assert mine["followers"] == [{"follower_id": "f1"}]
    assert {k: mine[k] for k in ("price", "manager_position", "overlay", "instrument")} == \
        {k: stored[k] for k in ("price", "manager_position", "overlay", "instrument")}
    assert narrow_snapshot(Principal("s", "t", frozenset()), stored) == stored
    assert stored["positions"] == {"f1": "3", "f2": "4"}, "the input is left as it was"


async def test_a_narrowed_token_never_replays_a_broader_tokens_stored_answer(api: Api) -> None:
    """Two tokens of one subject with different grants: the same Idempotency-Key and body
    must not hand the narrowed token the answer stored for the broader one."""
    w = await build_world(api)
    broad = api.container.issuer.issue("svc", "tnt_a", ["mirror:manage", "orders:read"])
    narrow = api.container.issuer.issue("svc", "tnt_a", ["mirror:manage", "orders:read"],
                                        vault_ids=[CORE])
    body = {"since": "2000-01-01T00:00:00Z"}
    first = await api.client.post(
        "/v1/dead-letters/redeliver", json=body,
        headers={"Authorization": f"Bearer {broad}", "Idempotency-Key": "same-key-1"})
    assert first.status_code == 200 and w["side-1-side1"] in first.json()["requeued"]
    second = await api.client.post(
        "/v1/dead-letters/redeliver", json=body,
        headers={"Authorization": f"Bearer {narrow}", "Idempotency-Key": "same-key-1"})
    assert second.status_code == 200, second.text
    assert second.headers.get("Idempotency-Replayed") is None
    assert w["side-1-side1"] not in second.text and w["side1"] not in second.text
