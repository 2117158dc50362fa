"""The authorization matrix, generated from the app's own OpenAPI document.

For every route and method, with each kind of token (owner, ops, auditor, a follower, another
tenant's owner, an owner narrowed to the other vault, another follower), it asserts:

* a token without the route's scope gets 403, whatever it names;
* an object the token may not see answers exactly like an id that does not exist (same
  status, same body once the id is swapped), and one it may see answers normally;
* a list shows every object of its kind the token may see;
* no answer contains an id, label or URL of an object the token may not see, beyond what
  the request itself carried.

A route in the OpenAPI document but not in ``MATRIX`` fails the test: a new route must say
here who may call it and what it names. Request bodies are small examples kept here, not
taken from the app's schemas, so the matrix does not depend on how bodies are modelled."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.api.authz_world import (
    BEE,
    CORE,
    SIDE,
    WHO,
    Who,
    World,
    build_world,
    forbidden_words,
)
from tests.api.conftest import Api

UNKNOWN = {"vault": "vlt-none-00", "follower": "00000000-0000-4000-8000-0000000f0000",
           "mo": "00000000-0000-5000-8000-0000000a0000",
           "fo": "00000000-0000-5000-8000-0000000b0000"}
# The objects each kind of route is tried on: both vaults of tenant A and tenant B's, two
# followers of one vault, a sync order made for one follower, children of several followers.
TRIED = {"vault": [CORE, SIDE, BEE], "follower": ["core1", "core2", "side1", "bee1"],
         "mo": ["core-2", "side-2", "bee-2", "sync-core3"],
         "fo": ["core-2-core1", "core-2-core2", "side-2-side1", "bee-2-bee1"]}


@dataclass(frozen=True)
class Case:
    """How one route is called. ``target``: the kind of object the request names as
    ``{id}`` (None: it names none). ``path``: the request path if it is not the OpenAPI path
    (a query string, or ``{id}`` where the path parameter is)."""

    scope: str | None  # None: no token needed (public)
    target: str | None = None
    path: str | None = None
    body: Any = None
    ok: tuple[int, ...] = (200,)
    missing: tuple[int, ...] = (404,)  # the answer for an unknown (or hidden) object
    feature: bool = False  # needs a plan feature tenant B (Core) lacks: 403 there
    shows: tuple[str, ...] = ()  # kinds of object every visible one of must be listed
    also: tuple[Case, ...] = field(default=())  # more requests to the same route


PUBLIC_OK = tuple(range(200, 500))  # anything but a server error; the body is still checked
MATRIX: dict[tuple[str, str], Case] = {
    ("GET", "/healthz"): Case(None),
    ("GET", "/readyz"): Case(None),
    ("GET", "/.well-known/jwks.json"): Case(None),
    ("GET", "/.well-known/openid-configuration"): Case(None),
    ("GET", "/.well-known/vanta-replay-keys.json"): Case(None),
    ("POST", "/v1/auth/token"): Case(None, body={"grant_type": "client_credentials"},
                                     ok=(409,)),
    ("POST", "/v1/invitations/{token}/accept"): Case(
        None, path="/v1/invitations/not-a-token/accept", body={"oidc_sub": "x"}, ok=(404,)),
    ("POST", "/v1/billing/webhooks/stripe"): Case(None, body={"type": "x"}, ok=PUBLIC_OK),
    ("POST", "/v1/billing/webhooks/btcpay"): Case(None, body={"type": "x"}, ok=PUBLIC_OK),
    ("GET", "/v1/vaults"): Case("vault:read", shows=("vault",)),
    ("GET", "/v1/vaults/{vault_id}"): Case("vault:read", "vault"),
    ("GET", "/v1/vaults/{vault_id}/followers"): Case("vault:read", "vault"),
    ("POST", "/v1/vaults/{vault_id}/followers"): Case(
        "follower:manage", "vault", body={"label": "fresh",
                                          "webhook": {"url": "https://fresh.example/h"}},
        ok=(201,)),
    ("GET", "/v1/vaults/{vault_id}/overlays"): Case("vault:read", "vault"),
    ("POST", "/v1/vaults/{vault_id}/overlay"): Case(
        "mirror:manage", "vault", body={"maintenance": {"enabled": False}}, ok=(201,)),
    ("POST", "/v1/vaults/{vault_id}/nav"): Case("mirror:manage", "vault", body={"nav": 1000},
                                                ok=(201,)),
    ("POST", "/v1/manager-orders"): Case(
        "mirror:manage", "vault", body={"vault_id": "{id}", "symbol": "MSFT", "side": "buy",
                                        "qty": 1, "ref_price": "100"}, ok=(201,)),
    ("GET", "/v1/manager-orders"): Case(
        "orders:read", shows=("mo",),
        also=(Case("orders:read", "vault", path="/v1/manager-orders?vault_id={id}",
                   missing=(200,)),)),
    ("GET", "/v1/manager-orders/{mo_id}"): Case("orders:read", "mo"),
    ("GET", "/v1/manager-orders/{mo_id}/children"): Case("orders:read", "mo"),
    ("GET", "/v1/manager-orders/{mo_id}/replay"): Case("audit:read", "mo", feature=True),
    ("GET", "/v1/manager-orders/{mo_id}/dag"): Case("orders:read", "mo"),
    ("GET", "/v1/manager-orders/{mo_id}/replay-bundle"): Case("audit:read", "mo",
                                                             feature=True),
    ("GET", "/v1/follower-orders"): Case(
        "orders:read", shows=("fo",),
        also=(Case("orders:read", "follower", path="/v1/follower-orders?follower_id={id}",
                   missing=(200, 404)),)),
    ("GET", "/v1/follower-orders/{fo_id}/attempts"): Case("orders:read", "fo"),
    ("GET", "/v1/follower-orders/{fo_id}/audit-proofs"): Case("orders:read", "fo"),
    ("GET", "/v1/followers/{follower_id}"): Case("vault:read", "follower"),
    ("PATCH", "/v1/followers/{follower_id}"): Case("follower:manage", "follower",
                                                   body={"kill_switch": False}),
    ("GET", "/v1/followers/{follower_id}/preview"): Case("vault:read", "follower"),
    ("POST", "/v1/followers/{follower_id}/nav"): Case("follower:manage", "follower",
                                                      body={"nav": 5000}, ok=(201,)),
    ("POST", "/v1/followers/{follower_id}/webhook/rotate-secret"): Case(
        "follower:manage", "follower", body={"overlap_seconds": 0}),
    ("POST", "/v1/followers/{follower_id}/flows"): Case(
        "follower:manage", "follower", body={"kind": "deposit", "amount": 100}, ok=(201,)),
    ("POST", "/v1/followers/{follower_id}/fees/close-period"): Case(
        "mirror:manage", "follower",
        body={"label": "2026-11", "rate": "0.2", "end": "2026-01-01T00:00:00Z"},
        ok=(201, 409, 422)),  # no NAV history to close over: refused, but reached
    ("GET", "/v1/followers/{follower_id}/fees"): Case("billing:read", "follower"),
    ("GET", "/v1/dead-letters"): Case("orders:read"),
    ("POST", "/v1/dead-letters/redeliver"): Case(
        "mirror:manage", "fo", body={"fo_ids": ["{id}"]}, missing=(200,),
        also=(Case("mirror:manage", body={"since": "2000-01-01T00:00:00Z"}),)),
    ("GET", "/v1/feed"): Case("orders:read", path="/v1/feed?follow=false", feature=True,
                              shows=("mo", "fo")),
    ("GET", "/v1/instruments"): Case("vault:read"),
    ("PUT", "/v1/instruments/{venue}/{symbol}"): Case(
        "platform:admin", path="/v1/instruments/default/AAPL", body={"lot_step": "1"}),
    ("GET", "/v1/subscriptions/me"): Case("billing:read"),
    ("GET", "/v1/billing/inbox"): Case("billing:read"),
    ("POST", "/v1/subscriptions/cancel"): Case(
        "users:manage", body={"at": "period_end"}, ok=(200, 404, 409, 502, 503)),
    ("POST", "/v1/subscriptions/resume"): Case("users:manage", ok=(200, 404, 409, 502, 503)),
    ("POST", "/v1/billing/invoices/{invoice_id}/refunds"): Case(
        "users:manage", path="/v1/billing/invoices/in_none/refunds", body={},
        ok=(201, 404, 409, 502, 503)),
    ("GET", "/v1/users"): Case("users:manage"),
    ("GET", "/v1/tenants/me/branding"): Case("vault:read"),
    ("PUT", "/v1/tenants/me/branding"): Case(
        "users:manage", body={"display_name": "Acme Capital", "accent_color": "#0a7"}),
    ("POST", "/v1/invitations"): Case("users:manage", body={"email": "new@example.com"},
                                      ok=(201, 403)),  # 403: no seat left on the plan
    ("POST", "/v1/subscriptions/change-plan"): Case(
        "users:manage", body={"plan": "pro"}, ok=(200, 201, 409, 502, 503)),
    # 403 for a token narrowed to vaults or a follower, or when the plan has no vault left
    ("POST", "/v1/vaults"): Case("vault:manage", body={"label": "fresh-vault"},
                                 ok=(201, 403)),
    ("PATCH", "/v1/vaults/{vault_id}"): Case("vault:manage", "vault", body={"public": False}),
    # Replay Studio: audit:read or vault:read (every role holds vault:read), Pro and up
    ("POST", "/v1/replay-studio/runs"): Case(
        "vault:read", "vault", feature=True, ok=(201,),
        body={"vault_id": "{id}", "last": 5, "starting_nav": "10000",
              "configs": [{"scale": "0.5"}]}),
    ("GET", "/v1/replay-studio/runs/{run_id}"): Case(
        "vault:read", path="/v1/replay-studio/runs/run-none", feature=True, ok=(404,)),
    ("GET", "/v1/venues"): Case("vault:read"),
    ("GET", "/v1/venues/{venue}"): Case("vault:read", path="/v1/venues/kraken"),
    ("PUT", "/v1/venues/{venue}"): Case(
        "platform:admin", path="/v1/venues/kraken",
        body={"maker_bps": "10", "taker_bps": "20", "spread_bps": "5", "conversion_bps": "1",
              "min_order_usd": "1", "latency_ms": 100, "pairs": ["BTC-USD"]}),
    ("GET", "/v1/vaults/{vault_id}/stablecoin-buffer"): Case("vault:read", "vault"),
    ("PUT", "/v1/vaults/{vault_id}/stablecoin-buffer"): Case("vault:manage", "vault",
                                                             body={"amount": "500"}),
    ("GET", "/v1/followers/{follower_id}/stablecoin-buffer"): Case("vault:read", "follower"),
    # 422: an override needs the follower on the Institutional plan
    ("PUT", "/v1/followers/{follower_id}/stablecoin-buffer"): Case(
        "follower:manage", "follower", body={"amount": "500"}, ok=(200, 422)),
    ("POST", "/v1/followers/{follower_id}/route-quote"): Case(
        "vault:read", "follower", body={"symbol": "BTC", "side": "buy", "qty": "0.1",
                                        "price": "40000", "usd_balance": "10000"}),
    ("GET", "/v1/follower-orders/{fo_id}/legs"): Case("orders:read", "fo"),
    ("DELETE", "/v1/followers/{follower_id}"): Case(
        "follower:manage", "follower", path="/v1/followers/{id}?positions=close"),
    # alert channels are tenant-wide: 403 for a token narrowed to vaults or a follower
    ("GET", "/v1/alert-channels"): Case("mirror:manage", ok=(200, 403)),
    ("POST", "/v1/alert-channels"): Case(
        "mirror:manage", body={"kind": "webhook", "url": "https://ops.example/alerts"},
        ok=(201, 403)),
    ("DELETE", "/v1/alert-channels/{channel_id}"): Case(
        "mirror:manage", path="/v1/alert-channels/ch-none", ok=(404, 403)),
    ("POST", "/v1/alert-channels/{channel_id}/test"): Case(
        "mirror:manage", path="/v1/alert-channels/ch-none/test", ok=(404, 403)),
    ("POST", "/v1/vaults/{vault_id}/reconcile"): Case("mirror:manage", "vault", body={},
                                                      ok=(201,)),
    ("GET", "/v1/reconciliations/{run_id}"): Case(
        "orders:read", path="/v1/reconciliations/rc_none", ok=(404,)),
    ("PUT", "/v1/vaults/{vault_id}/reconcile-threshold"): Case(
        "mirror:manage", "vault", body={"threshold_bps": 50}),
    ("PUT", "/v1/followers/{follower_id}/reconcile-threshold"): Case(
        "follower:manage", "follower", body={"threshold_bps": 25}),
    ("POST", "/v1/followers/{follower_id}/positions"): Case(
        "follower:manage", "follower", body={"positions": {"MSFT": "1"}}, ok=(201,)),
}


def _routes(api: Api) -> list[tuple[str, str]]:
    doc = api.client._transport.app.openapi()  # type: ignore[attr-defined]
    return [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops]


def test_every_route_in_the_openapi_document_is_in_the_matrix(api: Api) -> None:
    missing = [f"{m} {p}" for m, p in _routes(api) if (m, p) not in MATRIX]
    assert not missing, ("routes missing from MATRIX in tests/api/test_authz_matrix.py (say "
                         f"who may call them and what they name): {missing}")
    stale = [f"{m} {p}" for m, p in MATRIX if (m, p) not in _routes(api)]
    assert not stale, f"MATRIX lists routes the app no longer has: {stale}"


def _fill(template: Any, ident: str) -> Any:
    if isinstance(template, str):
        return template.replace("{id}", ident)
    if isinstance(template, dict):
        return {k: _fill(v, ident) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, ident) for v in template]
    return template


def _path(case: Case, openapi_path: str) -> str:
    if case.path is not None:
        return case.path
    head, sep, rest = openapi_path.partition("{")
    return head + "{id}" + rest.partition("}")[2] if sep else openapi_path


class Run:
    def __init__(self, api: Api, world: World, who: Who) -> None:
        self.api, self.w, self.who = api, world, who
        self.headers = {"Authorization": f"Bearer {who.token(api, world)}"}
        self.forbidden = forbidden_words(who, world)

    async def call(self, method: str, path: str, body: Any) -> httpx.Response:
        r = await self.api.client.request(method, path, json=body, headers=self.headers)
        sent = path + json.dumps(body)
        leaked = sorted(x for x in self.forbidden if x in r.text and x not in sent)
        assert not leaked, f"{self.who.name}: {method} {path} shows {leaked}: {r.text[:300]}"
        return r

    def expected_refusal(self, case: Case) -> int | None:
        if case.scope is not None and case.scope not in self.who.scopes():
            return 403
        if case.feature and self.who.tenant != "tnt_a":
            return 403
        return None

    async def check(self, method: str, openapi_path: str, case: Case) -> None:
        path, refusal = _path(case, openapi_path), self.expected_refusal(case)
        where = f"{self.who.name}: {method} {openapi_path}"
        if case.target is None:
            r = await self.call(method, path, case.body)
            expected = (refusal,) if refusal is not None else case.ok
            assert r.status_code in expected, f"{where}: {r.status_code} {r.text[:300]}"
            if refusal is None:
                self.check_shows(case, r, where)
            return
        unknown_id = UNKNOWN[case.target]
        unknown = await self.call(method, _fill(path, unknown_id), _fill(case.body, unknown_id))
        for name in TRIED[case.target]:
            ident = self.w[name]
            obj = next(o for o in self.w.objs if o.id == ident)
            r = await self.call(method, _fill(path, ident), _fill(case.body, ident))
            what = f"{where} on {name}"
            if refusal is not None:
                assert r.status_code == refusal, f"{what}: {r.status_code} {r.text[:200]}"
            elif self.who.sees(obj, self.w):
                assert r.status_code in case.ok, f"{what}: {r.status_code} {r.text[:300]}"
            else:
                assert r.status_code in case.missing, f"{what}: {r.status_code} {r.text[:200]}"
                assert (r.status_code, r.text.replace(ident, "<id>")) == \
                    (unknown.status_code, unknown.text.replace(unknown_id, "<id>")), \
                    f"{what}: a hidden object must answer like an unknown id"

    def check_shows(self, case: Case, r: httpx.Response, where: str) -> None:
        for kind in case.shows:
            absent = [o.id for o in self.w.of_kind(kind)
                      if self.who.sees(o, self.w) and o.id not in r.text]
            assert not absent, f"{where}: {kind} it may see but is not listed: {absent}"


def _order(item: tuple[tuple[str, str], Case]) -> tuple[int, str]:
    """Reads before writes (so lists are checked against the world as seeded), and the plan
    change last (it may take features away)."""
    (method, path), _ = item
    return (2 if path.endswith("change-plan") else 0 if method == "GET" else 1, path)


@pytest.mark.parametrize("who", WHO, ids=[w.name for w in WHO])
async def test_matrix(api: Api, who: Who) -> None:
    run = Run(api, await build_world(api), who)
    for (method, path), case in sorted(MATRIX.items(), key=_order):
        for c in (case, *case.also):
            await run.check(method, path, c)
