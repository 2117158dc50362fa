"""Signing in to the web app against an external OIDC provider (``oauth2-mock-server``):
the authorization code flow with PKCE, the token verified like an API token, the session
carrying its tenant and scopes. Skips without Node.js, like the provider tests it reuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.http_helpers import UNLIMITED
from tests.integration.test_oidc_provider import (  # noqa: F401 (fixtures)
    AUD,
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT,
    MockOidc,
    mock_a,
    node,
)
from vanta.application.seed import create_tenant, create_vault
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.entrypoints.api.app import create_app


@pytest.fixture
async def web(mock_a: MockOidc, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    c = build(Settings(data_dir=tmp_path, profile="test", oidc_issuer_url=mock_a.issuer,
                       jwt_audience=AUD, web_oidc_client_id=CLIENT_ID,
                       web_oidc_client_secret=CLIENT_SECRET,
                       web_oidc_scope="openid vault:read orders:read", **UNLIMITED))
    await c.migrate()
    await create_tenant(c.uow(), tenant_id=TENANT, name="OIDC tenant")
    await create_vault(c.uow(), tenant_id=TENANT, vault_id="V_OIDC", label="Via OIDC")
    app = create_app(c, run_dispatcher=False)
    await c.start()  # the provider's discovery and keys, as the lifespan does
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://app.test") as client:
        yield client
    await c.close()


async def test_sign_in_through_the_providers_code_flow_with_pkce(
        web: httpx.AsyncClient, mock_a: MockOidc) -> None:  # noqa: F811
    start = await web.get("/app/login?next=/app/vaults/V_OIDC")
    assert start.status_code == 303
    authorize = urlsplit(start.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == mock_a.issuer
    q = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert q["client_id"] == CLIENT_ID and q["code_challenge_method"] == "S256"
    assert q["redirect_uri"] == "http://app.test/app/auth/callback"
    # the browser's visit to the provider, which signs the user in and redirects back
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(start.headers["location"]
                                        + "&login_hint=ana%40example.com")
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/app/auth/callback"
    done = await web.get(f"/app/auth/callback?{back.query}")
    assert done.status_code == 303 and done.headers["location"] == "/app/vaults/V_OIDC"
    page = await web.get("/app/vaults/V_OIDC")
    assert page.status_code == 200 and "Via OIDC" in page.text
    assert f"· {TENANT}" in page.text
    # reads only: the provider granted vault:read and orders:read, so no operator forms
    assert "Apply flip mode" not in page.text
    assert (await web.get("/app/followers/new")).status_code == 404
    # with a provider configured, the built-in issuer signs nobody in
    dev = await web.get("/app/auth/dev/authorize", params={**q, "tenant": TENANT,
                                                          "login_hint": "owner"})
    assert dev.status_code == 404


async def test_a_code_replayed_or_from_another_sign_in_is_refused(
        web: httpx.AsyncClient) -> None:
    start = await web.get("/app/login")
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(start.headers["location"])
    query = urlsplit(at_provider.headers["location"]).query
    await web.get("/app/login")  # a newer sign-in replaces the state and the verifier
    stale = await web.get(f"/app/auth/callback?{query}")
    assert stale.status_code == 400 and "vanta_session" not in web.cookies
