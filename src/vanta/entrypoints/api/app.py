"""The FastAPI application: wiring of middleware, exception handlers, routers and the
lifespan. The routes live in the ``routes_*`` modules and reach the container through
``request.app.state``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from vanta import __version__
from vanta.application import entitlements_cache, vault_cache
from vanta.application.audit_anchor import AnchorRefused, AuditAnchoring
from vanta.application.billing import BillingProviders, expire_btcpay_periods
from vanta.application.clock import Clock, utcnow
from vanta.application.overlays import revert_expired
from vanta.application.ports.identity import InvalidToken
from vanta.application.principal import Principal
from vanta.application.vault_snapshots import SnapshotSchedule
from vanta.bootstrap import Container
from vanta.bootstrap.signing import build_verifier
from vanta.bootstrap.stores import build_cache_store
from vanta.entrypoints import web
from vanta.entrypoints.api import (
    docs,
    problems,
    routes_alerts,
    routes_audit,
    routes_billing,
    routes_branding,
    routes_crossrail,
    routes_delivery,
    routes_lifecycle,
    routes_mirroring,
    routes_ops,
    routes_orders,
    routes_reconcile,
    routes_studio,
    routes_tenancy,
)
from vanta.entrypoints.api.client_address import ClientAddressMiddleware, TrustedProxies
from vanta.entrypoints.api.header_limit import HeaderLimitMiddleware
from vanta.entrypoints.api.idempotency import IdempotencyMiddleware
from vanta.entrypoints.api.models import documented_schemas
from vanta.entrypoints.api.ratelimit import RateLimitMiddleware, RateLimitPolicy
from vanta.entrypoints.api.request_log import AuditBatcher, RequestLogMiddleware
from vanta.entrypoints.api.schemas import ERROR_RESPONSES

__all__ = ["create_app", "run_scheduler"]

ROUTERS = (routes_ops, routes_orders, routes_mirroring, routes_delivery, routes_tenancy,
           routes_billing, routes_lifecycle, routes_studio, routes_branding, routes_alerts,
           routes_audit, routes_reconcile, routes_crossrail)


def create_app(container: Container, *, run_dispatcher: bool | None = None,
               billing_providers: BillingProviders | None = None,
               billing_clock: Clock = utcnow) -> FastAPI:
    """``billing_providers`` defaults to the container's (what its settings configure,
    closed with the container); given ones are the caller's to close."""
    in_api = container.settings.run_dispatcher_in_api if run_dispatcher is None else run_dispatcher
    st = container.settings
    store = build_cache_store(st)
    batcher = AuditBatcher(container.uow)
    providers = billing_providers or container.billing
    # invalidated by every unit of work that writes the vaults table (see vault_cache)
    db_version = container.db_version()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(batcher.run(stop))]
        if in_api:
            tasks.append(asyncio.create_task(container.dispatcher.run_forever(
                st.dispatcher_poll_seconds, stop)))
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
                  responses=ERROR_RESPONSES, docs_url=None, redoc_url=None)
    state = app.state
    state.container, state.audit_batcher, state.cache_store = container, batcher, store
    state.billing_providers, state.billing_clock = providers, billing_clock
    entitlements_cache.configure(store)
    state.vaults_cache = vault_cache.configure(store, db_version=db_version)
    state.rendered_vaults = {}  # tenant -> (cached rows, limit, their first page as JSON)

    principal_key = _principal_resolver(container)
    # Outermost first: client address, request log, header limit, rate limit, then
    # idempotency (replays still count). Rate limits are per subject; stored answers are per
    # subject and grants.
    app.add_middleware(IdempotencyMiddleware, store=store, methods=("POST", "PATCH", "DELETE"),
                       resolve_principal=_principal_resolver(container, with_grants=True),
                       ttl_s=st.idempotency_ttl_seconds)
    app.add_middleware(RateLimitMiddleware, store=store, resolve_principal=principal_key,
                       policy=RateLimitPolicy(limit=st.rate_limit_per_minute, window_s=60,
                                              burst=st.rate_limit_burst))
    app.add_middleware(HeaderLimitMiddleware)  # before any token in a header is parsed
    app.add_middleware(RequestLogMiddleware, batcher=batcher)
    app.add_middleware(ClientAddressMiddleware,
                       trusted=TrustedProxies.parse(st.trusted_proxies))
    problems.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    docs.install(app)  # /docs and /redoc with packaged assets, no CDN
    web.mount(app, container)  # the web app under /app
    _document_bodies(app)
    return app


def _principal_resolver(container: Container, *, with_grants: bool = False) -> Any:
    async def principal_key(scope: Any) -> str | None:
        """tenant:subject of a valid bearer token, else None (the route answers 401). With
        ``with_grants`` the key also names the token's grants, so two tokens of one subject
        with different narrowing never share a stored idempotent answer."""
        raw = b""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                raw = value  # the last one, as dict(headers) would have it
        auth = raw.decode("latin-1")
        if not auth.lower().startswith("bearer "):
            return None
        token = auth[7:].strip()
        verified = scope.get("state", {}).get("verified_token")
        if verified is not None and verified[0] == token:
            p = verified[1]
        else:
            try:
                p = await container.verifier.averify(token)
            except InvalidToken:
                return None
            # the route's auth dependency reuses this instead of verifying the signature again
            scope.setdefault("state", {})["verified_token"] = (token, p)
        key = f"{p.tenant_id}:{p.subject}"
        return f"{key}:{_grants_digest(p)}" if with_grants else key

    return principal_key


def _grants_digest(p: Principal) -> str:
    grants = json.dumps([sorted(p.scopes), sorted(p.roles), p.follower_id,
                         None if p.vault_ids is None else sorted(p.vault_ids)])
    return hashlib.sha256(grants.encode()).hexdigest()[:16]


def _document_bodies(app: FastAPI) -> None:
    """The request body models (declared with ``openapi_body``) join the components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()  # FastAPI's document, kept as app.openapi_schema
            doc.setdefault("components", {}).setdefault("schemas", {}).update(
                documented_schemas())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


async def run_scheduler(container: Container, stop: asyncio.Event,
                        interval: float = 1.0, clock: Clock = utcnow) -> None:
    """Until ``stop`` is set: reverts expired overlays (each with an audit event), lapses
    BTCPay periods, sends the operators' queued alerts, takes the periodic vault snapshots
    and, every ``audit_anchor_interval_seconds`` (from the start), signs the audit chain's
    head into the object store. Each job's failure is logged and leaves the others running."""
    grace = timedelta(days=container.settings.billing_grace_days)
    snapshots = SnapshotSchedule(
        timedelta(seconds=container.settings.snapshot_interval_seconds))
    anchoring = _anchoring(container)
    loop = asyncio.get_running_loop()
    next_anchor = loop.time()
    while not stop.is_set():
        try:
            await revert_expired(container.uow)
            await expire_btcpay_periods(container.uow, grace=grace)
        except Exception:
            problems.log.exception("scheduler pass failed")
        try:
            if container.alerts is not None:
                await container.alerts.run_once()
        except Exception:
            problems.log.exception("alert delivery pass failed")
        try:
            await snapshots.run_if_due(container.uow, container.object_store, clock())
        except Exception:
            problems.log.exception("vault snapshots failed")
        if anchoring is not None and loop.time() >= next_anchor:
            next_anchor = loop.time() + container.settings.audit_anchor_interval_seconds
            await _anchor(anchoring)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def _anchoring(container: Container) -> AuditAnchoring | None:
    if container.settings.audit_anchor_interval_seconds <= 0 or container.signer is None:
        return None
    return AuditAnchoring(container.uow, container.object_store(), container.signer,
                          build_verifier())


async def _anchor(anchoring: AuditAnchoring) -> None:
    try:
        res = await anchoring.anchor()
        if res is not None and res.created:
            problems.log.info("audit head anchored at %s", res.anchor.key)
    except AnchorRefused as e:  # a chain that no longer verifies is news for a person
        problems.log.error("ALERT audit anchor refused: %s", e)
    except Exception:
        problems.log.exception("audit anchoring failed")
