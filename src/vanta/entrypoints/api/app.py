"""The FastAPI application: thin routes over application handlers and queries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from vanta import __version__
from vanta.adapters.cache import open_store
from vanta.adapters.db.engine import sqlite_change_counter
from vanta.adapters.identity.verifier import InvalidToken
from vanta.application import entitlements_cache, vault_cache
from vanta.application.billing import expire_btcpay_periods
from vanta.application.followers import register_follower
from vanta.application.manager_orders import (
    parse_order_input,
    submit_manager_order,
    sync_follower,
)
from vanta.application.overlays import revert_expired
from vanta.application.principal import Principal
from vanta.bootstrap import Container
from vanta.entrypoints.api import jsonbody, problems
from vanta.entrypoints.api.access import (
    order_not_found,
    require_vault,
    vault_not_found,
    visible_children,
    visible_order,
    visible_vaults,
)
from vanta.entrypoints.api.auth import BEARER_SECURITY, PlainRoute, authorize, require
from vanta.entrypoints.api.client_address import ClientAddressMiddleware, TrustedProxies
from vanta.entrypoints.api.header_limit import HeaderLimitMiddleware
from vanta.entrypoints.api.idempotency import IdempotencyMiddleware
from vanta.entrypoints.api.pagination import cursor_key, decode, encode_key, page
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.api.ratelimit import RateLimitMiddleware, RateLimitPolicy
from vanta.entrypoints.api.render import (
    child_json,
    child_json_from,
    follower_json,
    order_json,
    vault_json,
)
from vanta.entrypoints.api.request_log import AuditBatcher, RequestLogMiddleware
from vanta.entrypoints.api.routes_billing import build_router as billing_routes
from vanta.entrypoints.api.routes_delivery import build_router as delivery_routes
from vanta.entrypoints.api.routes_mirroring import build_router
from vanta.entrypoints.api.routes_tenancy import build_router as tenancy_routes
from vanta.entrypoints.api.schemas import (
    ERROR_RESPONSES,
    FOLLOWER_SCHEMA,
    ORDER_SCHEMA,
    body_schema,
)

# An order's answer (POST and GET) lists its children up to this many; one list size for both.
ORDER_CHILDREN_LIMIT = 100_000


async def read_json(request: Request) -> Any:
    """Every JSON body is decoded by jsonbody (size, depth and duplicate-key rules)."""
    return await jsonbody.read_json(request)


def parse_since(since: object) -> datetime | None:
    if since is None:
        return None
    if not isinstance(since, str):  # a JSON body can carry anything here
        raise ApiProblem(422, "invalid_since", "since must be an ISO 8601 timestamp string",
                         field="since")
    try:
        ts = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise ApiProblem(422, "invalid_since", "since must be an ISO 8601 timestamp",
                         field="since") from None
    if ts.tzinfo is None:
        raise ApiProblem(422, "invalid_since", "since must carry a timezone (e.g. Z)",
                         field="since")
    return ts


Limit = Annotated[int, Query(ge=1, le=1000)]


def create_app(container: Container, *, run_dispatcher: bool | None = None) -> FastAPI:
    in_api = container.settings.run_dispatcher_in_api if run_dispatcher is None else run_dispatcher

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(batcher.run(stop))]
        if in_api:
            tasks.append(asyncio.create_task(container.dispatcher.run_forever(
                container.settings.dispatcher_poll_seconds, stop)))
            tasks.append(asyncio.create_task(run_scheduler(container, stop)))
        yield
        stop.set()
        for t in tasks:
            await t
        await store.close()
        if db_version is not None:
            db_version.close()
        await container.close()

    app = FastAPI(title="Vanta Platform API", version=__version__, lifespan=lifespan,
                  responses=ERROR_RESPONSES)
    app.state.container = container
    batcher = AuditBatcher(container.uow)
    app.state.audit_batcher = batcher
    st = container.settings
    store = open_store(st.redis_url)
    app.state.cache_store = store
    entitlements_cache.configure(store)
    # invalidated by every unit of work that writes the vaults table (see vault_cache)
    db_version = sqlite_change_counter(container.engine)
    vaults_cache = vault_cache.configure(store, db_version=db_version)

    async def tenant_vaults(tenant_id: str) -> tuple[Any, ...]:
        async def load() -> list[Any]:
            async with container.uow(readonly=True) as uow:
                return await uow.vaults.list(tenant_id)
        return await vaults_cache.rows(tenant_id, load)

    async def principal_key(scope: Any) -> str | None:
        """tenant:subject of a valid bearer token, else None (the route answers 401)."""
        raw = b""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                raw = value  # the last one, as dict(headers) would have it
        auth = raw.decode("latin-1")
        if not auth.lower().startswith("bearer "):
            return None
        token = auth[7:].strip()
        try:
            p = await container.verifier.averify(token)
        except InvalidToken:
            return None
        # the route's auth dependency reuses this instead of verifying the signature again
        scope.setdefault("state", {})["verified_token"] = (token, p)
        return f"{p.tenant_id}:{p.subject}"

    # Outermost first: client address, request log, header limit, rate limit, then
    # idempotency (replays still count).
    app.add_middleware(IdempotencyMiddleware, store=store, resolve_principal=principal_key,
                       ttl_s=st.idempotency_ttl_seconds)
    app.add_middleware(RateLimitMiddleware, store=store, resolve_principal=principal_key,
                       policy=RateLimitPolicy(limit=st.rate_limit_per_minute, window_s=60,
                                              burst=st.rate_limit_burst))
    app.add_middleware(HeaderLimitMiddleware)  # before any token in a header is parsed
    app.add_middleware(RequestLogMiddleware, batcher=batcher)
    app.add_middleware(ClientAddressMiddleware,
                       trusted=TrustedProxies.parse(st.trusted_proxies))
    problems.install(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Readiness: the database answers (a load balancer stops routing here if not)."""
        try:
            async with container.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception as e:
            return problems.problem(503, "not_ready", f"database unavailable: {type(e).__name__}")
        return JSONResponse({"status": "ready"})

    @app.get("/.well-known/jwks.json", tags=["identity"])
    async def jwks() -> dict[str, Any]:
        return container.issuer.jwks()

    @app.get("/.well-known/openid-configuration", tags=["identity"])
    async def discovery(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"issuer": container.settings.jwt_issuer,
                "jwks_uri": f"{base}/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256"]}

    rendered: dict[str, tuple[tuple[Any, ...], bytes]] = {}  # tenant -> (rows, JSON body)

    # The hottest read: auth is a plain call instead of Depends(require(...)), and the route
    # is called directly (PlainRoute): FastAPI's parameter solving cost more than the rest of
    # the route. Same answers, same OpenAPI operation.
    async def list_vaults(request: Request) -> Response:
        p = await authorize(request, "vault:read")
        vaults = await visible_vaults(container, p)
        rows = await tenant_vaults(p.tenant_id)  # cached: no database round trip on a hit
        if vaults is not None:
            return JSONResponse({"data": [vault_json(r) for r in rows
                                          if r["vault_id"] in vaults]})
        done = rendered.get(p.tenant_id)
        if done is None or done[0] is not rows:  # rendered once per cache fill
            done = rows, JSONResponse({"data": [vault_json(r) for r in rows]}).body
            if len(rendered) >= 10_000:  # bounded like the cache itself
                rendered.clear()
            rendered[p.tenant_id] = done
        return Response(done[1], media_type="application/json")

    app.router.add_api_route("/v1/vaults", list_vaults, methods=["GET"], tags=["vaults"],
                             response_model=dict[str, Any], openapi_extra=BEARER_SECURITY,
                             route_class_override=PlainRoute)

    @app.get("/v1/vaults/{vault_id}", tags=["vaults"])
    async def get_vault(vault_id: str,
                        p: Principal = Depends(require("vault:read"))) -> dict[str, Any]:
        await require_vault(container, p, vault_id)
        async with container.uow(readonly=True) as uow:
            row = await uow.vaults.get(p.tenant_id, vault_id)
            if row is None:
                raise vault_not_found(vault_id)
            if p.follower_id is not None:
                # a follower sees its own place in the vault, not the size of everyone's book
                return vault_json(row)
            followers = await uow.followers.list_for_vault(p.tenant_id, vault_id)
        return {**vault_json(row), "follower_count": len(followers)}

    @app.get("/v1/vaults/{vault_id}/followers", tags=["followers"])
    async def list_followers(vault_id: str,
                             p: Principal = Depends(require("vault:read")),
                             limit: Limit = 100, cursor: str | None = None) -> dict[str, Any]:
        await require_vault(container, p, vault_id)
        after = cursor_key(cursor)
        async with container.uow(readonly=True) as uow:
            if await uow.vaults.get(p.tenant_id, vault_id) is None:
                raise ApiProblem(404, "vault_not_found", f"vault {vault_id} not found")
            rows = await uow.followers.page_for_vault(p.tenant_id, vault_id, after, limit + 1)
        rows = [r for r in rows if p.may_see_follower(r["follower_id"])]
        more = len(rows) > limit
        return {"data": [follower_json(r) for r in rows[:limit]],
                "next_cursor": encode_key(rows[limit - 1]["follower_id"]) if more else None}

    @app.post("/v1/vaults/{vault_id}/followers", status_code=201, tags=["followers"],
              openapi_extra=body_schema(FOLLOWER_SCHEMA))
    async def add_follower(vault_id: str, request: Request,
                           p: Principal = Depends(require("follower:manage"))) -> JSONResponse:
        await require_vault(container, p, vault_id)
        raw = await read_json(request)
        row, secret = await register_follower(container.uow(), container.secrets,
                                              tenant_id=p.tenant_id, vault_id=vault_id, raw=raw,
                                              actor=p.subject)
        body = {**follower_json(row), "webhook_secret": secret}  # the only time it is shown
        if isinstance(raw, dict) and raw.get("sync") is True:
            synced = await sync_follower(container.uow(), tenant_id=p.tenant_id,
                                         vault_id=vault_id, follower_id=row["follower_id"],
                                         actor=p.subject)
            body["sync_orders"] = [child_json_from(c) for e in synced for c in e.children]
            container.outbox_written.set()
        return JSONResponse(body, status_code=201)

    @app.post("/v1/manager-orders", status_code=201, tags=["orders"],
              openapi_extra=body_schema(ORDER_SCHEMA))
    async def post_manager_order(request: Request,
                                 p: Principal = Depends(require("mirror:manage"))
                                 ) -> JSONResponse:
        order = parse_order_input(await read_json(request))
        await require_vault(container, p, order.vault_id)
        result = await submit_manager_order(container.uow(), tenant_id=p.tenant_id,
                                            order=order, source="api", actor=p.subject)
        if result.created:
            container.outbox_written.set()
        async with container.uow() as uow:
            row = await uow.manager_orders.get(p.tenant_id, order.mo_id)
            children = await uow.child_orders.list(p.tenant_id, follower_id=None,
                                                   mo_id=order.mo_id, since=None,
                                                   limit=ORDER_CHILDREN_LIMIT)
        assert row is not None
        shown = visible_children(p, await visible_vaults(container, p), children)
        body = {**order_json(row), "created": result.created,
                "children": [child_json(c) for c in shown]}
        return JSONResponse(body, status_code=201 if result.created else 200)

    @app.get("/v1/manager-orders", tags=["orders"])
    async def list_manager_orders(
        p: Principal = Depends(require("orders:read")), since: str | None = None,
        vault_id: str | None = None, limit: Limit = 100, cursor: str | None = None,
    ) -> dict[str, Any]:
        vaults = await visible_vaults(container, p)
        async with container.uow(readonly=True) as uow:
            rows = await uow.manager_orders.list(p.tenant_id, parse_since(since), limit + 1,
                                                 vault_id=vault_id, after=decode(cursor),
                                                 vault_ids=vaults)
        # the cursor follows the rows read, so hiding one never ends the listing early
        return page(rows, limit, "mo_id",
                    [order_json(r) for r in rows[:limit] if visible_order(p, vaults, r)])

    @app.get("/v1/manager-orders/{mo_id}", tags=["orders"])
    async def get_manager_order(mo_id: str,
                                p: Principal = Depends(require("orders:read"))) -> dict[str, Any]:
        vaults = await visible_vaults(container, p)
        async with container.uow(readonly=True) as uow:
            row = await uow.manager_orders.get(p.tenant_id, mo_id)
            if row is None or not visible_order(p, vaults, row):
                raise order_not_found(mo_id)
            children = await uow.child_orders.list(p.tenant_id, follower_id=None, mo_id=mo_id,
                                                   since=None, limit=ORDER_CHILDREN_LIMIT)
        return {**order_json(row),
                "children": [child_json(c) for c in visible_children(p, vaults, children)]}

    @app.get("/v1/follower-orders", tags=["orders"])
    async def list_follower_orders(
        p: Principal = Depends(require("orders:read")), follower_id: str | None = None,
        since: str | None = None, limit: Limit = 100, cursor: str | None = None,
    ) -> dict[str, Any]:
        if p.follower_id is not None:
            if follower_id not in (None, p.follower_id):
                raise ApiProblem(404, "follower_not_found", f"follower {follower_id} not found")
            follower_id = p.follower_id
        vaults = await visible_vaults(container, p)
        async with container.uow(readonly=True) as uow:
            rows = await uow.child_orders.list(p.tenant_id, follower_id=follower_id, mo_id=None,
                                               since=parse_since(since), limit=limit + 1,
                                               after=decode(cursor), vault_ids=vaults)
        return page(rows, limit, "fo_id", [child_json(r) for r in rows])

    @app.get("/v1/follower-orders/{fo_id}/attempts", tags=["orders"])
    async def list_attempts(fo_id: str,
                            p: Principal = Depends(require("orders:read"))) -> dict[str, Any]:
        vaults = await visible_vaults(container, p)
        async with container.uow(readonly=True) as uow:
            child = await uow.child_orders.get(p.tenant_id, fo_id)
            if child is None or not visible_children(p, vaults, [child]):
                raise ApiProblem(404, "follower_order_not_found", f"order {fo_id} not found")
            rows = await uow.attempts.list(fo_id)
        return {"data": [{k: (v.isoformat() if isinstance(v, datetime) else v)
                          for k, v in r.items() if k != "id"} for r in rows]}

    app.include_router(build_router(container, read_json))
    app.include_router(delivery_routes(container, read_json, parse_since))
    app.include_router(tenancy_routes(container, read_json))
    app.include_router(billing_routes(container, read_json))
    return app


async def run_scheduler(container: Container, stop: asyncio.Event,
                        interval: float = 1.0) -> None:
    """Reverts expired overlays (each with an audit event) until ``stop`` is set."""
    grace = timedelta(days=container.settings.billing_grace_days)
    while not stop.is_set():
        try:
            await revert_expired(container.uow)
            await expire_btcpay_periods(container.uow, grace=grace)
        except Exception:
            problems.log.exception("scheduler pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
