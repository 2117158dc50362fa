"""Cursor pagination of the vault, overlay, user, instrument and dead-letter lists, and the
``mo_id`` filter of the follower-order list: paging with small limits returns every item
exactly once in the list's order, cursors this API did not issue are refused as problems, and
a narrowed token's pages hold only what it may see."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.contract.test_uow_contract_support import T0, at, child, follower_row, mo_row
from vanta.application.seed import create_vault
from vanta.domain.orders import ChildOrderState


async def _pages(api: Api, path: str, limit: int, headers: dict[str, str] | None = None,
                 key: str = "data") -> tuple[list[dict[str, Any]], int]:
    """Every item of ``path`` read ``limit`` at a time, and how many pages that took."""
    items: list[dict[str, Any]] = []
    cursor, pages = None, 0
    sep = "&" if "?" in path else "?"
    while True:
        q = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = await api.client.get(q, headers=headers or api.auth())
        assert r.status_code == 200, r.text
        body = r.json()
        assert "next_cursor" in body
        items += body[key]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


async def _run(api: Api, go: Callable[[Any], Awaitable[Any]]) -> None:
    async with api.container.uow() as u:
        await go(u)
        await u.commit()


async def _more_vaults(api: Api) -> list[str]:
    for v in ("V3", "V1", "V4", "V2", "V0"):
        await create_vault(api.container.uow(), tenant_id="tnt_a", vault_id=v, label=v)
    r = await api.client.get("/v1/vaults", headers=api.auth())
    return [v["vault_id"] for v in r.json()["data"]]


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_vaults_page_through_each_once_in_order(api: Api, limit: int) -> None:
    whole = await _more_vaults(api)
    assert sorted(whole) == ["V0", "V1", "V2", "V3", "V4", "VA"]
    got, pages = await _pages(api, "/v1/vaults", limit)
    assert [v["vault_id"] for v in got] == whole
    assert pages == -(-len(whole) // limit)


async def test_the_first_vault_page_is_still_served_from_the_cache(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    await _more_vaults(api)
    first = await api.client.get("/v1/vaults?limit=2", headers=api.auth())
    opened: list[bool] = []
    real = api.container.uow

    def counting(readonly: bool = False) -> Any:
        opened.append(readonly)
        return real(readonly)
    monkeypatch.setattr(api.container, "uow", counting)
    again = await api.client.get("/v1/vaults?limit=2", headers=api.auth())
    assert again.json() == first.json() and opened == []
    plain = await api.client.get("/v1/vaults", headers=api.auth())
    assert len(plain.json()["data"]) == 6 and plain.json()["next_cursor"] is None
    assert opened == []
    await api.client.get(f"/v1/vaults?limit=2&cursor={first.json()['next_cursor']}",
                         headers=api.auth())
    assert opened == [True]  # later pages read the database


async def test_a_narrowed_token_pages_only_its_vaults(api: Api) -> None:
    await _more_vaults(api)
    token = api.container.issuer.issue("svc", "tnt_a", ["vault:read"],
                                       vault_ids=["V1", "V4", "VA"])
    got, _ = await _pages(api, "/v1/vaults", 2, {"Authorization": f"Bearer {token}"})
    assert sorted(v["vault_id"] for v in got) == ["V1", "V4", "VA"]
    assert len(got) == 3


async def test_users_page_through_each_once(api: Api) -> None:
    async def go(u: Any) -> None:
        for i, secs in enumerate((5, 5, 1, 9, 5)):
            await u.users.add({"user_id": f"u{i}", "tenant_id": "tnt_a", "email": f"{i}@x",
                               "role": "viewer", "oidc_sub": f"s{i}", "created_at": at(secs)})
    await _run(api, go)
    r = await api.client.get("/v1/users", headers=api.auth())
    whole = [u["user_id"] for u in r.json()["data"]]
    assert len(whole) >= 5 and "invitations" in r.json()
    for limit in (1, 2, 3):
        got, _ = await _pages(api, "/v1/users", limit)
        assert [u["user_id"] for u in got] == whole


async def test_instruments_page_through_each_once(api: Api) -> None:
    async def go(u: Any) -> None:
        for venue, symbol in (("paper", "MSFT"), ("paper", "AAPL"), ("alpaca", "AAPL"),
                              ("binance", "BTC/USDT")):
            await u.instruments.upsert({"symbol": symbol, "venue": venue,
                                        "lot_step": Decimal("1"), "min_qty": Decimal("1"),
                                        "min_notional": Decimal("0"), "updated_at": T0})
    await _run(api, go)
    r = await api.client.get("/v1/instruments", headers=api.auth())
    whole = [(i["venue"], i["symbol"]) for i in r.json()["data"]]
    assert len(whole) >= 4 and whole == sorted(whole)
    for limit in (1, 3):
        got, _ = await _pages(api, "/v1/instruments", limit)
        assert [(i["venue"], i["symbol"]) for i in got] == whole


async def test_overlays_page_through_each_once(api: Api) -> None:
    async def go(u: Any) -> None:
        for oid, secs in (("o2", 0), ("o1", 10), ("o3", 0), ("o4", 5)):
            await u.overlays.add({"overlay_id": oid, "tenant_id": "tnt_a", "vault_id": "VA",
                                  "kind": "flip", "params": {}, "actor": "ops",
                                  "applied_at": at(secs), "expires_at": at(100),
                                  "state": "active"})
    await _run(api, go)
    for limit in (1, 3):
        got, _ = await _pages(api, "/v1/vaults/VA/overlays", limit)
        assert [o["overlay_id"] for o in got] == ["o2", "o3", "o4", "o1"]


async def _dead_letters(api: Api) -> None:
    """Children d0..d5 in VA (FA) and VZ (FZ), all dead-lettered, some at the same time."""
    await create_vault(api.container.uow(), tenant_id="tnt_a", vault_id="VZ", label="Z")

    async def go(u: Any) -> None:
        await u.followers.add(follower_row("tnt_a", "VA", "FA"))
        await u.followers.add(follower_row("tnt_a", "VZ", "FZ"))
        for vault, follower, mo, fos in (("VA", "FA", "MA", ("d0", "d2", "d4")),
                                         ("VZ", "FZ", "MZ", ("d1", "d3", "d5"))):
            await u.manager_orders.add(mo_row("tnt_a", vault, mo))
            await u.child_orders.add_many(
                [child(mo, follower, fo, state=ChildOrderState.DLQ) for fo in fos],
                tenant_id="tnt_a", vault_id=vault, now=T0)
        for i, fo in enumerate(("d0", "d1", "d2", "d3", "d4", "d5")):
            await u.child_orders.update(fo, expect_state="dlq", dead_lettered_at=at(i // 2))
    await _run(api, go)


async def test_dead_letters_page_through_each_once_and_stay_narrowed(api: Api) -> None:
    await _dead_letters(api)
    for limit in (1, 2, 4):
        got, _ = await _pages(api, "/v1/dead-letters", limit)
        assert [x["fo_id"] for x in got] == ["d0", "d1", "d2", "d3", "d4", "d5"]
    token = api.container.issuer.issue("svc", "tnt_a", ["orders:read"], vault_ids=["VZ"])
    got, _ = await _pages(api, "/v1/dead-letters", 2, {"Authorization": f"Bearer {token}"})
    assert [x["fo_id"] for x in got] == ["d1", "d3", "d5"]


async def test_follower_orders_filter_by_manager_order(api: Api) -> None:
    await _dead_letters(api)
    got, _ = await _pages(api, "/v1/follower-orders?mo_id=MZ", 2)
    assert sorted(x["fo_id"] for x in got) == ["d1", "d3", "d5"]
    assert {x["mo_id"] for x in got} == {"MZ"}
    r = await api.client.get("/v1/follower-orders?mo_id=nope", headers=api.auth())
    assert r.status_code == 200 and r.json()["data"] == []
    token = api.container.issuer.issue("svc", "tnt_a", ["orders:read"], vault_ids=["VA"])
    r = await api.client.get("/v1/follower-orders?mo_id=MZ",
                             headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["data"] == []  # outside the token's vaults


PAGED = ["/v1/vaults", "/v1/vaults/VA/overlays", "/v1/users", "/v1/instruments",
         "/v1/dead-letters"]


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("cursor", ["not-a-cursor", "", "eyJ4IjoxfQ",  # {"x":1}
                                    "WyJrIiwiVkEiXQ"])  # ["k","VA"]: a follower-list cursor
async def test_cursors_not_issued_for_the_list_are_problems(api: Api, path: str,
                                                            cursor: str) -> None:
    r = await api.client.get(f"{path}?cursor={cursor}", headers=api.auth())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("limit", ["0", "1001", "x"])
async def test_limits_out_of_range_are_problems(api: Api, path: str, limit: str) -> None:
    r = await api.client.get(f"{path}?limit={limit}", headers=api.auth())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "validation_error"
