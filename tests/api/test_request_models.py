"""Request bodies validated by the Pydantic models: the documented schema and the server
agree, refusals keep their problem codes, and nothing is written when a body is refused."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from tests.api.conftest import Api
from vanta.application.principal import ALL_SCOPES

ADMIN = (*ALL_SCOPES, "platform:admin")


async def _webhook_follower(api: Api) -> str:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": {"url": "http://127.0.0.1:9/x"}})
    assert r.status_code == 201, r.text
    return str(r.json()["follower_id"])


async def _openapi(api: Api) -> dict[str, Any]:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def _body_validator(doc: dict[str, Any], path: str, method: str) -> Any:
    body = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema_rs.validator_for({**body, "components": doc["components"]},
                                       validate_formats=True)


def _query(doc: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    params = doc["paths"][path]["get"]["parameters"]
    schema: dict[str, Any] = next(p for p in params if p["name"] == name)["schema"]
    return schema


# -- finding 9: an overlay's TTL is range-checked on its exact value ---------------------------

@pytest.mark.parametrize("body", [
    {"persona": "Ares", "ttl_minutes": "1e13"},
    {"persona": "Ares", "ttl_minutes": 1e13},
    {"flip": {"ttl_minutes": 1e300}},
    {"flip": {"amplify": "0.5", "ttl_minutes": "99999999999999999999"}},
    {"persona": "Ares", "ttl_minutes": 0},
    {"persona": "Ares", "ttl_minutes": "60.5"},
])
async def test_an_overlay_ttl_out_of_range_is_refused_not_a_server_error(
        api: Api, body: dict[str, Any]) -> None:
    r = await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(), json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_ttl"
    async with api.container.uow() as uow:
        assert await uow.overlays.list("tnt_a", "VA") == []


@pytest.mark.parametrize("ttl", [1, "60", "12.5", 30])
async def test_an_overlay_ttl_in_range_is_applied(api: Api, ttl: object) -> None:
    r = await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                              json={"persona": "Athena", "ttl_minutes": ttl})
    assert r.status_code == 201, r.text


# -- finding 11: what the schema forbids, the server refuses ------------------------------------

@pytest.mark.parametrize("route", ["vault", "follower"])
async def test_a_null_as_of_is_refused_on_both_nav_routes(api: Api, route: str) -> None:
    path = "/v1/vaults/VA/nav" if route == "vault" else \
        f"/v1/followers/{await _webhook_follower(api)}/nav"
    r = await api.client.post(path, headers=api.auth(), json={"as_of": None, "nav": 0.0})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_as_of" and r.json()["field"] == "as_of"
    async with api.container.uow() as uow:
        assert [e for e in await uow.audit.all() if e.action == "nav_recorded"] == []
    ok = await api.client.post(path, headers=api.auth(), json={"nav": 0.0})  # as_of left out
    assert ok.status_code == 201, ok.text


async def test_null_broker_credentials_are_refused(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"bridged": {"broker": "paper", "credentials": None}})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_bridge"
    async with api.container.uow() as uow:
        assert await uow.followers.list_for_vault("tnt_a", "VA") == []
    # credentials left out: the paper broker needs none
    ok = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                               json={"bridged": {"broker": "paper"}})
    assert ok.status_code == 201, ok.text


async def test_rotating_a_secret_takes_no_body_and_the_schema_says_so(api: Api) -> None:
    fid = await _webhook_follower(api)
    path = "/v1/followers/{follower_id}/webhook/rotate-secret"
    doc = await _openapi(api)
    assert doc["paths"][path]["post"]["requestBody"]["required"] is False
    r = await api.client.post(f"/v1/followers/{fid}/webhook/rotate-secret",
                              headers=api.auth())
    assert r.status_code == 200, r.text
    assert r.json()["webhook_secret"].startswith("whsec_")
    bad = await api.client.post(f"/v1/followers/{fid}/webhook/rotate-secret",
                                headers=api.auth(), json={"overlap_seconds": -1})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_overlap"


async def test_the_schema_forbids_what_the_server_refuses(api: Api) -> None:
    doc = await _openapi(api)
    nav = _body_validator(doc, "/v1/vaults/{vault_id}/nav", "post")
    assert not nav.is_valid({"as_of": None, "nav": 0.0})
    assert nav.is_valid({"nav": 0.0, "as_of": "2026-01-01T00:00:00Z"})
    follower = _body_validator(doc, "/v1/vaults/{vault_id}/followers", "post")
    assert not follower.is_valid({"bridged": {"broker": "paper", "credentials": None}})
    assert not follower.is_valid({"bridged": {"broker": "alpaca"}})  # its keys are required
    assert follower.is_valid({"bridged": {"broker": "paper"}})
    assert not follower.is_valid({"scale": 1})  # neither a webhook nor a broker


@pytest.mark.parametrize(("settings", "code"), [
    ({"mode": "capped"}, "cap_required"),
    ({"mode": "proportional", "max_pos_usd": "100"}, "cap_requires_capped_mode"),
    ({"max_pos_usd": "100"}, "mode_not_in_plan"),  # a cap means capped mode: not in Core
    ({"mode": "capped", "max_pos_usd": "100", "plan": "core"}, "mode_not_in_plan"),
])
async def test_rules_between_follower_fields_are_in_the_schema(
        api: Api, settings: dict[str, Any], code: str) -> None:
    body = {**settings, "webhook": {"url": "http://x.io/h"}}
    assert not _body_validator(await _openapi(api), "/v1/vaults/{vault_id}/followers",
                               "post").is_valid(body)
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json=body)
    assert r.status_code == 422 and r.json()["code"] == code


@pytest.mark.parametrize("settings", [
    {"mode": "capped", "max_pos_usd": "100", "plan": "pro"},
    {"max_pos_usd": "100", "plan": "institutional"},
    {"mode": "shadow", "max_pos_usd": "100"},
    {"mode": "proportional", "max_pos_usd": None},
])
async def test_follower_settings_the_schema_allows_are_accepted(
        api: Api, settings: dict[str, Any]) -> None:
    body = {**settings, "webhook": {"url": "http://x.io/h"}}
    assert _body_validator(await _openapi(api), "/v1/vaults/{vault_id}/followers",
                           "post").is_valid(body)
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json=body)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("path", "body", "valid"), [
    ("/v1/invitations", {"email": "a\x1d@b.io"}, False),  # Python calls \x1d white space
    ("/v1/invitations", {"email": "a@b.io\n"}, False),
    ("/v1/invitations", {"email": "ann@b.io"}, True),
    ("/v1/manager-orders", {"id": " M-1", "vault_id": "VA", "symbol": "A", "side": "buy",
                            "qty": 1}, False),
    ("/v1/manager-orders", {"id": "M\u00a01", "vault_id": "VA", "symbol": "A", "side": "buy",
                            "qty": 1}, True),
])
async def test_patterns_mean_the_same_to_the_schema_and_the_server(
        api: Api, path: str, body: dict[str, Any], valid: bool) -> None:
    assert _body_validator(await _openapi(api), path, "post").is_valid(body) is valid
    r = await api.client.post(path, headers=api.auth(), json=body)
    assert (r.status_code < 300) is valid, r.text


# -- finding 13: the schema is as strict as the server -----------------------------------------

@pytest.mark.parametrize(("path", "method", "body"), [
    ("/v1/manager-orders", "post", {"vault_id": "VA", "symbol": "AAPL", "side": "buy",
                                    "qty": 1, "id": ""}),
    ("/v1/manager-orders", "post", {"vault_id": "", "symbol": "AAPL", "side": "buy",
                                    "qty": 1}),
    ("/v1/manager-orders", "post", {"vault_id": "VA", "symbol": "AAPL", "side": "buy",
                                    "qty": ""}),
    ("/v1/manager-orders", "post", {"vault_id": "VA", "symbol": "AAPL", "side": "buy",
                                    "qty": "0"}),
    ("/v1/vaults/{vault_id}/followers", "post", {"scale": 0, "webhook": {"url": "http://x.io"}}),
    ("/v1/vaults/{vault_id}/followers", "post", {"scale": "0",
                                                 "webhook": {"url": "http://x.io"}}),
    ("/v1/instruments/{venue}/{symbol}", "put", {"lot_step": 0}),
    ("/v1/instruments/{venue}/{symbol}", "put", {"lot_step": "0.000"}),
    ("/v1/vaults/{vault_id}/overlay", "post", {"persona": "Ares", "ttl_minutes": 0}),
    ("/v1/vaults/{vault_id}/overlay", "post", {"flip": {"ttl_minutes": "0"}}),
    ("/v1/followers/{follower_id}/flows", "post", {"kind": "deposit", "amount": ""}),
    ("/v1/followers/{follower_id}/fees/close-period", "post",
     {"label": "", "rate": "0.2", "end": "2026-01-01T00:00:00Z"}),
    ("/v1/followers/{follower_id}/fees/close-period", "post",
     {"label": "Q1", "rate": "0.2", "end": "yesterday"}),
    ("/v1/dead-letters/redeliver", "post", {"since": ""}),
])
async def test_input_the_server_refuses_is_invalid_per_the_schema(
        api: Api, path: str, method: str, body: dict[str, Any]) -> None:
    doc = await _openapi(api)
    assert not _body_validator(doc, path, method).is_valid(body)
    fid = await _webhook_follower(api)
    url = path.format(vault_id="VA", follower_id=fid, venue="nasdaq", symbol="AAPL")
    r = await api.client.request(method.upper(), url, headers=api.auth(scopes=ADMIN), json=body)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(("path", "name", "code"), [
    ("/v1/manager-orders", "cursor", "invalid_cursor"),
    ("/v1/manager-orders", "since", "invalid_since"),
    ("/v1/follower-orders", "cursor", "invalid_cursor"),
    ("/v1/follower-orders", "since", "invalid_since"),
    ("/v1/vaults/VA/followers", "cursor", "invalid_cursor"),
    ("/v1/dead-letters", "since", "invalid_since"),
])
async def test_empty_query_values_are_documented_and_refused_with_their_codes(
        api: Api, path: str, name: str, code: str) -> None:
    doc = await _openapi(api)
    documented = path.replace("VA", "{vault_id}")
    schema = _query(doc, documented, name)
    branches = schema.get("anyOf", [schema])
    assert all(b.get("minLength") == 1 for b in branches if b.get("type") == "string")
    r = await api.client.get(path, params={name: ""}, headers=api.auth())
    assert r.status_code == 422 and r.json()["code"] == code


async def test_an_empty_asof_is_documented_and_refused(api: Api) -> None:
    fid = await _webhook_follower(api)
    doc = await _openapi(api)
    schema = _query(doc, "/v1/followers/{follower_id}/preview", "asof")
    string = next(b for b in schema["anyOf"] if b.get("type") == "string")
    assert string["minLength"] == 1 and schema["format"] == "date-time"
    assert jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(
        "2026-01-01T00:00:00Z")
    assert not jsonschema_rs.validator_for(schema, validate_formats=True).is_valid("")
    r = await api.client.get(f"/v1/followers/{fid}/preview", params={"asof": ""},
                             headers=api.auth())
    assert r.status_code == 422 and r.json()["code"] == "invalid_asof"


# -- one mapping of validation failures onto the problem codes ---------------------------------

@pytest.mark.parametrize(("path", "method", "code"), [
    ("/v1/manager-orders", "post", "unknown_field"),
    ("/v1/vaults/VA/followers", "post", "unknown_field"),
    ("/v1/vaults/VA/nav", "post", "unknown_field"),
    ("/v1/vaults/VA/overlay", "post", "unknown_field"),
    ("/v1/instruments/nasdaq/AAPL", "put", "unknown_field"),
    ("/v1/subscriptions/change-plan", "post", "unknown_field"),
    ("/v1/dead-letters/redeliver", "post", "invalid_redelivery"),
    ("/v1/invitations", "post", "invalid_body"),
])
async def test_an_unknown_field_keeps_its_code(api: Api, path: str, method: str,
                                               code: str) -> None:
    r = await api.client.request(method.upper(), path, headers=api.auth(scopes=ADMIN),
                                 json={"zz_unknown": 1, "aa_unknown": 2})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == code
    if code == "unknown_field":
        assert problem["field"] == "aa_unknown" and "zz_unknown" in problem["detail"]


async def test_a_body_that_is_not_an_object_is_refused(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/nav", headers=api.auth(), json=[1])
    assert r.status_code == 422 and r.json()["code"] == "invalid_body"
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json="x")
    assert r.status_code == 422 and r.json()["code"] == "invalid_order"


# -- answers match the documented response models ----------------------------------------------

def _answer_validator(doc: dict[str, Any], path: str, method: str, status: int) -> Any:
    content = doc["paths"][path][method]["responses"][str(status)]["content"]
    return jsonschema_rs.validator_for({**content["application/json"]["schema"],
                                        "components": doc["components"]})


async def test_answers_match_their_documented_models(api: Api) -> None:
    doc = await _openapi(api)
    h = api.auth(scopes=ADMIN)

    async def check(method: str, url: str, path: str, status: int, **kw: Any) -> Any:
        r = await api.client.request(method.upper(), url, headers=h, **kw)
        assert r.status_code == status, r.text
        _answer_validator(doc, path, method, status).validate(r.json())
        return r.json()

    f = await check("post", "/v1/vaults/VA/followers", "/v1/vaults/{vault_id}/followers", 201,
                    json={"webhook": {"url": "http://127.0.0.1:9/x"}, "max_pos_usd": "500",
                          "plan": "pro"})
    await check("post", "/v1/vaults/VA/followers", "/v1/vaults/{vault_id}/followers", 201,
                json={"bridged": {"broker": "paper"}, "label": "b", "sync": True})
    fid = f["follower_id"]
    order = {"id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10,
             "ref_price": "100.5"}
    await check("post", "/v1/manager-orders", "/v1/manager-orders", 201, json=order)
    mo = await check("post", "/v1/manager-orders", "/v1/manager-orders", 200, json=order)
    await check("get", f"/v1/manager-orders/{mo['mo_id']}", "/v1/manager-orders/{mo_id}", 200)
    await check("get", "/v1/manager-orders", "/v1/manager-orders", 200)
    await check("get", "/v1/follower-orders", "/v1/follower-orders", 200)
    await check("get", "/v1/vaults", "/v1/vaults", 200)
    await check("get", "/v1/vaults/VA", "/v1/vaults/{vault_id}", 200)
    await check("get", "/v1/vaults/VA/followers", "/v1/vaults/{vault_id}/followers", 200)
    await check("get", f"/v1/followers/{fid}", "/v1/followers/{follower_id}", 200)
    await check("patch", f"/v1/followers/{fid}", "/v1/followers/{follower_id}", 200,
                json={"paused": True, "protections": {"allow_symbols": ["AAPL"]}})
    await check("post", "/v1/vaults/VA/nav", "/v1/vaults/{vault_id}/nav", 201,
                json={"nav": "1000.5"})
    await check("put", "/v1/instruments/nasdaq/AAPL", "/v1/instruments/{venue}/{symbol}", 200,
                json={"lot_step": "1", "fractional_step": "0.001"})
