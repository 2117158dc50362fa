"""A JSON body must be sent as application/json: anything else is 415 problem+json."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

PROBLEM = "application/problem+json"
ORDER = b'{"id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 1}'


@pytest.mark.parametrize("content_type", [
    None,
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
    "application/json; charset=latin-1",
])
async def test_a_body_not_sent_as_json_is_415_and_changes_nothing(
        api: Api, content_type: str | None) -> None:
    headers = api.auth() | ({"content-type": content_type} if content_type else {})
    r = await api.client.post("/v1/manager-orders", headers=headers, content=ORDER)
    assert r.status_code == 415 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "unsupported_media_type"
    async with api.container.uow() as uow:
        assert await uow.manager_orders.list("tnt_a", None, 10) == []


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON;Charset=UTF-8",
])
async def test_json_with_or_without_a_utf8_charset_is_accepted(api: Api,
                                                              content_type: str) -> None:
    r = await api.client.post("/v1/manager-orders",
                              headers=api.auth() | {"content-type": content_type},
                              content=ORDER)
    assert r.status_code == 201, r.text


async def test_patch_with_a_form_body_is_415(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": {"url": "https://f.example/h"}})
    fid = r.json()["follower_id"]
    r = await api.client.patch(f"/v1/followers/{fid}", content=b"label=x",
                               headers=api.auth() | {
                                   "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"


async def test_the_openapi_document_lists_415_for_every_json_body(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    ops = [op for path in doc["paths"].values() for op in path.values()
           if "application/json" in op.get("requestBody", {}).get("content", {})]
    assert ops
    assert all("415" in op["responses"] for op in ops)
    stripe = doc["paths"]["/v1/billing/webhooks/stripe"]["post"]
    assert "415" not in stripe["responses"]
