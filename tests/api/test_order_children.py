"""The order's answer counts its children; the children are read a page at a time."""

from __future__ import annotations

from tests.api.conftest import Api

HOOK = {"url": "https://follower.example/hook"}


async def _followers(api: Api, n: int) -> list[str]:
    out = []
    for _ in range(n):
        r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                                  json={"webhook": HOOK, "scale": "1"})
        assert r.status_code == 201, r.text
        out.append(r.json()["follower_id"])
    return out


ORDER = {"id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10,
         "ref_price": 100}


async def test_the_201_counts_children_and_links_to_their_pages(api: Api) -> None:
    fids = await _followers(api, 5)
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json=ORDER)
    assert r.status_code == 201, r.text
    body = r.json()
    assert "children" not in body
    assert body["children_total"] == 5 and body["counts"] == {"pending": 5}
    link = body["links"]["children"]
    assert link == f"/v1/manager-orders/{body['mo_id']}/children"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get(link, params=params, headers=api.auth())).json()
        assert len(page["data"]) <= 2
        seen += [c["follower_id"] for c in page["data"]]
        assert all(c["mo_id"] == body["mo_id"] for c in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(fids)  # every child once, none twice
    # the same order again: answered 200 from the stored children's states
    again = await api.client.post("/v1/manager-orders", headers=api.auth(), json=ORDER)
    assert again.status_code == 200
    assert again.json()["counts"] == {"pending": 5} and again.json()["created"] is False


async def test_children_pages_are_narrowed_and_unknown_orders_are_404(api: Api) -> None:
    mine, _other = await _followers(api, 2)
    body = (await api.client.post("/v1/manager-orders", headers=api.auth(), json=ORDER)).json()
    tok = api.container.issuer.issue("f-user", "tnt_a", ["vault:read", "orders:read"],
                                     roles=["follower"], follower_id=mine)
    h = {"Authorization": f"Bearer {tok}"}
    page = (await api.client.get(body["links"]["children"], headers=h)).json()
    assert [c["follower_id"] for c in page["data"]] == [mine]
    r = await api.client.get("/v1/manager-orders/VA:nope/children", headers=api.auth())
    assert r.status_code == 404 and r.json()["code"] == "manager_order_not_found"
