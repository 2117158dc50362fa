"""``GET /v1/vaults`` authorizes itself (``authorize`` on a ``PlainRoute``) instead of going
through ``Depends(require(...))``: its answers, headers and OpenAPI operation must be exactly
those of a route that uses the dependency (``GET /v1/vaults/{vault_id}``)."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from tests.api.conftest import Api
from vanta.entrypoints.api.auth import PlainRoute
from vanta.entrypoints.api.request_log import new_correlation_id

VOLATILE = {"x-request-id", "content-length", "ratelimit-remaining", "ratelimit-reset"}


def _answer(r) -> tuple[int, dict[str, str], object]:  # type: ignore[no-untyped-def]
    body = r.json()
    if isinstance(body, dict) and "detail" in body:
        body = {k: v for k, v in body.items() if k != "detail"}
    return r.status_code, {k: v for k, v in r.headers.items() if k not in VOLATILE}, body


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer   "},
    {"Authorization": "Basic dXNlcjpwdw=="},
    {"Authorization": "bearer x.y.z"},
    {"Authorization": "Bearer x.y.z"},
    {"Authorization": "Token abc def"},
])
async def test_refusals_match_the_dependency_route(api: Api, headers: dict[str, str]) -> None:
    plain = await api.client.get("/v1/vaults", headers=headers)
    dep = await api.client.get("/v1/vaults/VA", headers=headers)
    assert plain.status_code in (401, 403)
    assert _answer(plain) == _answer(dep)
    assert plain.headers["content-type"] == "application/problem+json"


async def test_scope_and_good_tokens(api: Api) -> None:
    no_scope = api.auth(scopes=("orders:read",))
    plain = await api.client.get("/v1/vaults", headers=no_scope)
    dep = await api.client.get("/v1/vaults/VA", headers=no_scope)
    assert plain.status_code == 403 and plain.json()["code"] == "insufficient_scope"
    assert plain.json()["detail"] == dep.json()["detail"]
    assert _answer(plain)[:2] == _answer(dep)[:2]
    ok = await api.client.get("/v1/vaults", headers={
        "Authorization": "bearer " + api.token(scopes=("vault:read",))})  # any case, as before
    assert ok.status_code == 200 and [v["vault_id"] for v in ok.json()["data"]] == ["VA"]


async def test_openapi_operation_keeps_the_bearer_scheme(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    plain, dep = spec["paths"]["/v1/vaults"]["get"], spec["paths"]["/v1/vaults/{vault_id}"]["get"]
    assert plain["security"] == dep["security"] == [{"HTTPBearer": []}]
    # the paging parameters it reads by hand are documented as declared ones would be
    assert [(q["name"], q["in"]) for q in plain["parameters"]] \
        == [("limit", "query"), ("cursor", "query")]
    assert set(plain["responses"]) == set(dep["responses"])
    assert plain["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "object"


def test_plain_route_refuses_endpoints_with_parameters() -> None:
    app = FastAPI()

    async def ok(request: Request) -> Response:
        return Response(b"")

    async def with_query(request: Request, q: int = 1) -> Response:
        return Response(b"")

    async def without_request() -> Response:
        return Response(b"")

    app.router.add_api_route("/ok", ok, route_class_override=PlainRoute)
    for bad in (with_query, without_request):
        with pytest.raises(TypeError):
            app.router.add_api_route("/bad", bad, route_class_override=PlainRoute)


def test_generated_correlation_ids_are_uuid4_hex() -> None:
    ids = {new_correlation_id() for _ in range(2000)}
    assert len(ids) == 2000
    for cid in ids:
        u = uuid.UUID(hex=cid)
        assert len(cid) == 32 and u.hex == cid and u.version == 4
        assert u.variant == uuid.RFC_4122
