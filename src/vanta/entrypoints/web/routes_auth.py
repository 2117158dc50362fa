"""Sign-in (OIDC authorization code with PKCE), the built-in issuer's local sign-in page on
the embedded profile, and sign-out.

The app is an OAuth client of the configured provider. ``/app/login`` keeps a random
``state`` and PKCE ``code_verifier`` in a short signed cookie and sends the browser to the
provider's authorization endpoint with the S256 challenge; ``/app/auth/callback`` checks the
state, exchanges the code with the verifier, verifies the access token exactly like the API
does (same verifier, same scopes) and starts the session. Without ``VANTA_OIDC_ISSUER_URL``
the provider is the built-in issuer: ``/app/auth/dev/authorize`` lists one user per role of
a tenant (the demo tenant by default) and hands back a one-time code bound to the challenge.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from vanta.application.ports.identity import InvalidToken, TokenExchangeError
from vanta.application.principal import ROLE_SCOPES
from vanta.application.seed import DEMO_TENANT_ID
from vanta.bootstrap import Container
from vanta.entrypoints.web.pages import (
    CsrfRefused,
    PageNotFound,
    container_of,
    csrf_guard,
    current_principal,
    form_of,
    page_router,
    render,
)
from vanta.entrypoints.web.session import (
    LOGIN_COOKIE,
    LOGIN_TTL_S,
    SESSION_COOKIE,
    Signer,
    clear_cookie,
    new_session,
    set_cookie,
)

router = page_router()
# Forms posted before a session exists; each checks its own binding instead (see below).
open_router = APIRouter(include_in_schema=False)
CALLBACK = "/app/auth/callback"
DEV_AUTHORIZE = "/app/auth/dev/authorize"
DEV_ROLES = ("owner", "ops", "auditor", "follower")
CODE_TTL_S = 60


@dataclass(frozen=True)
class DevUser:
    role: str
    subject: str
    tenant_id: str
    follower_id: str | None
    label: str


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                    ).rstrip(b"=").decode()


def _signer(request: Request) -> Signer:
    s: Signer = request.app.state.signer
    return s


def _safe_next(value: str | None) -> str:
    # only a path of this app: never an open redirect
    if value and value.startswith("/app") and not value.startswith("//"):
        return value
    return "/app"


def dev_sign_in(c: Container) -> bool:
    """The built-in issuer signs users in on the embedded profile only."""
    return c.settings.oidc_issuer_url is None and not c.settings.is_production


async def dev_users(c: Container, tenant_id: str) -> list[DevUser]:
    async with c.uow(readonly=True) as uow:
        tenant = await uow.tenants.get(tenant_id)
        if tenant is None:
            return []
        vaults = await uow.vaults.list(tenant_id)
        followers = [f for v in vaults for f in await uow.followers.list_for_vault(
            tenant_id, v.vault_id)]
    first = min(followers, key=lambda f: (f.created_at, f.follower_id), default=None)
    users = []
    for role in DEV_ROLES:
        if role == "follower" and first is None:
            continue  # a follower user needs a follower to be
        fid = first.follower_id if role == "follower" and first else None
        name = f"{role} of {tenant.name}" + (f" ({first.label})" if fid and first else "")
        users.append(DevUser(role, f"dev-{role}@{tenant_id}", tenant_id, fid, name))
    return users


@router.get("/login")
async def login(request: Request, next: str | None = None, tenant: str | None = None,
                as_role: str | None = None) -> Response:
    """Starts the code flow. ``as_role`` (the built-in issuer only) picks the user at once:
    the one-click link ``vanta up`` prints."""
    c = container_of(request)
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    redirect_uri = str(request.base_url).rstrip("/") + CALLBACK
    query = {"response_type": "code", "client_id": c.settings.web_oidc_client_id,
             "redirect_uri": redirect_uri, "scope": c.settings.web_oidc_scope,
             "state": state,
             "code_challenge": _challenge(verifier), "code_challenge_method": "S256"}
    if dev_sign_in(c):
        endpoint = DEV_AUTHORIZE
        query["tenant"] = tenant or DEMO_TENANT_ID
        if as_role:
            query["login_hint"] = as_role
    else:
        assert c.oidc is not None
        endpoint = await c.oidc.endpoint("authorization_endpoint")
    pending = {"state": state, "verifier": verifier, "next": _safe_next(next),
               "exp": int(time.time()) + LOGIN_TTL_S}
    resp = RedirectResponse(f"{endpoint}?{urlencode(query)}", status_code=303)
    set_cookie(request, resp, LOGIN_COOKIE, _signer(request).dumps(pending, "login"),
               max_age=LOGIN_TTL_S, path="/app/auth")
    return resp


def _check_authorize(request: Request, q: dict[str, str]) -> None:
    c = container_of(request)
    if not dev_sign_in(c):
        raise PageNotFound()
    own = str(request.base_url).rstrip("/") + CALLBACK
    if q.get("client_id") != c.settings.web_oidc_client_id or q.get("redirect_uri") != own \
            or q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" \
            or len(q.get("code_challenge", "")) < 43 or not q.get("state"):
        raise PageNotFound()  # an authorization request this issuer does not serve


@router.get("/auth/dev/authorize")
async def dev_authorize(request: Request) -> Response:
    q = dict(request.query_params)
    _check_authorize(request, q)
    users = await dev_users(container_of(request), q.get("tenant", DEMO_TENANT_ID))
    hint = q.get("login_hint")
    chosen = next((u for u in users if u.role == hint), None)
    if chosen is not None:
        return _issue_code(request, chosen, q)
    return render(request, "dev_sign_in.html", title="Sign in", users=users, query=q)


@open_router.post("/auth/dev/authorize")
async def dev_authorize_pick(request: Request) -> Response:
    # No session yet, so no session CSRF token: the form's ``state`` must be the one in
    # this browser's pending sign-in cookie (a double submit), and the code it hands out
    # is only redeemable with the PKCE verifier of that same cookie anyway.
    q = await form_of(request)
    pending = _signer(request).loads(request.cookies.get(LOGIN_COOKIE), "login")
    if pending is None or not secrets.compare_digest(str(pending.get("state")),
                                                     q.get("state", "")):
        raise CsrfRefused()
    _check_authorize(request, q)
    users = await dev_users(container_of(request), q.get("tenant", DEMO_TENANT_ID))
    chosen = next((u for u in users if u.role == q.get("role")), None)
    if chosen is None:
        raise PageNotFound()
    return _issue_code(request, chosen, q)


def _issue_code(request: Request, user: DevUser, q: dict[str, str]) -> Response:
    codes: dict[str, dict[str, Any]] = request.app.state.dev_codes
    now = time.time()
    for k in [k for k, v in codes.items() if v["exp"] < now]:
        del codes[k]
    code = secrets.token_urlsafe(32)
    codes[code] = {"user": user, "challenge": q["code_challenge"],
                   "redirect_uri": q["redirect_uri"], "exp": now + CODE_TTL_S}
    query = urlencode({"code": code, "state": q["state"]})
    return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=303)


async def _dev_token(request: Request, code: str, verifier: str, redirect_uri: str
                     ) -> tuple[str, int]:
    """The built-in issuer's token endpoint, in process: one use per code, PKCE checked."""
    grant = request.app.state.dev_codes.pop(code, None)
    if grant is None or grant["exp"] < time.time() or grant["redirect_uri"] != redirect_uri \
            or _challenge(verifier) != grant["challenge"]:
        raise TokenExchangeError("invalid_grant", "unknown, used or expired code")
    c = container_of(request)
    user: DevUser = grant["user"]
    ttl = c.settings.token_ttl_seconds
    token = c.issuer.issue(user.subject, user.tenant_id, ROLE_SCOPES[user.role],
                           roles=[user.role], follower_id=user.follower_id, ttl_seconds=ttl)
    return token, int(time.time()) + ttl


async def _provider_token(request: Request, code: str, verifier: str, redirect_uri: str
                          ) -> tuple[str, int]:
    c = container_of(request)
    assert c.token_exchange is not None
    secret = c.settings.web_oidc_client_secret
    answer = await c.token_exchange.exchange_code(
        c.settings.web_oidc_client_id, secret.get_secret_value() if secret else "", code,
        redirect_uri, code_verifier=verifier)
    expires_in = int(answer.get("expires_in") or c.settings.token_ttl_seconds)
    return str(answer["access_token"]), int(time.time()) + expires_in


@router.get("/auth/callback")
async def callback(request: Request, code: str = "", state: str = "") -> Response:
    pending = _signer(request).loads(request.cookies.get(LOGIN_COOKIE), "login")
    if pending is None or pending.get("exp", 0) < time.time() or \
            not secrets.compare_digest(str(pending.get("state")), state) or not code:
        return render(request, "error.html", 400, title="Sign-in failed",
                      message="This sign-in link is stale or was not started here. "
                              "Start again from the sign-in page.")
    c = container_of(request)
    redirect_uri = str(request.base_url).rstrip("/") + CALLBACK
    fetch = _dev_token if dev_sign_in(c) else _provider_token
    try:
        token, exp = await fetch(request, code, str(pending["verifier"]), redirect_uri)
        principal = await c.verifier.averify(token)  # the same check as every API call
    except (TokenExchangeError, InvalidToken) as e:
        return render(request, "error.html", 401, title="Sign-in failed",
                      message=f"The identity provider's answer was refused ({e}).")
    session = new_session(principal, token_exp=exp)
    resp = RedirectResponse(str(pending["next"]), status_code=303)
    set_cookie(request, resp, SESSION_COOKIE, _signer(request).dumps(session, "session"),
               max_age=max(1, exp - int(time.time())))
    clear_cookie(request, resp, LOGIN_COOKIE, path="/app/auth")
    request.state.web_session_written = True
    request.state.principal = principal
    return resp


@open_router.post("/logout")
async def logout(request: Request) -> Response:
    if current_principal(request) is not None:
        await csrf_guard(request)  # a stale session needs no token to be dropped
    resp = RedirectResponse("/app/signed-out", status_code=303)
    clear_cookie(request, resp, SESSION_COOKIE)
    request.state.web_session_written = True
    return resp


@router.get("/signed-out")
async def signed_out(request: Request) -> Response:
    if current_principal(request) is not None:
        return RedirectResponse("/app", status_code=303)
    return render(request, "signed_out.html", title="Signed out")
