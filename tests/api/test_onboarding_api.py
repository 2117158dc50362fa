"""Branding and mailed invitations through the API (SQLite, the outbox folder, and a real
SMTP server on loopback)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.api.conftest import Api
from tests.http_helpers import UNLIMITED, add_idempotency_key
from tests.images import data_url, gif, png
from tests.smtp_server import plain_text, running_smtp
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.entrypoints.api.app import create_app

BRANDING = "/v1/tenants/me/branding"
LINK = re.compile(r"https?://\S+/app/invitations/(\S+)")


def _as(api: Api, role: str, tenant: str = "tnt_a") -> dict[str, str]:
    tok = api.container.issuer.issue(f"{role}-1", tenant, ALL_SCOPES, roles=[role])
    return {"Authorization": f"Bearer {tok}"}


async def test_an_owner_sets_the_brand_and_every_role_reads_it(api: Api) -> None:
    logo = data_url("image/gif", gif(8, 8))
    r = await api.client.put(BRANDING, headers=_as(api, "owner"), json={
        "display_name": "Acme Capital", "accent_color": "#0A7", "logo": logo})
    assert r.status_code == 200, r.text
    want = {"display_name": "Acme Capital", "accent_color": "#00aa77", "logo": logo}
    assert r.json() == want
    for role in ("ops", "auditor", "follower"):
        got = await api.client.get(BRANDING, headers=_as(api, role))
        assert (got.status_code, got.json()) == (200, want), role
    other = await api.client.get(BRANDING, headers=_as(api, "owner", "tnt_b"))
    assert other.json() == {"display_name": "tnt_b", "accent_color": "#2563eb", "logo": None}


async def test_only_an_owner_changes_the_brand(api: Api) -> None:
    for role in ("ops", "auditor", "follower"):
        r = await api.client.put(BRANDING, headers=_as(api, role),
                                 json={"display_name": "Mine", "accent_color": "#000"})
        assert r.status_code == 403, role
        assert r.headers["content-type"] == "application/problem+json"
    got = await api.client.get(BRANDING, headers=_as(api, "owner"))
    assert got.json()["display_name"] == "tnt_a"


async def test_bad_branding_is_refused_as_problem_json_naming_the_field(api: Api) -> None:
    h = _as(api, "owner")
    cases = [
        ({"display_name": "A", "accent_color": "blue"}, "invalid_accent_color"),
        ({"display_name": "\u00a0 ", "accent_color": "#000"}, "invalid_display_name"),
        ({"display_name": "A", "accent_color": "#000",
          "logo": data_url("image/png", gif())}, "invalid_logo"),  # bytes are not a PNG
        ({"display_name": "A", "accent_color": "#000",
          "logo": data_url("image/png", png(2000, 2))}, "logo_too_large"),
        ({"display_name": "A", "accent_color": "#000",
          "logo": "https://cdn.example/logo.png"}, "invalid_logo"),
    ]
    for body, code in cases:
        r = await api.client.put(BRANDING, headers=h, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == code, r.text
    got = await api.client.get(BRANDING, headers=h)
    assert got.json()["display_name"] == "tnt_a"  # nothing stored


async def test_an_invitation_lands_in_the_outbox_and_its_link_accepts_it(api: Api) -> None:
    r = await api.client.post("/v1/invitations", headers=api.auth(),
                              json={"email": "ada@corp.example", "role": "ops"})
    assert r.status_code == 201 and r.json()["mailed"] is True
    outbox = api.container.mail_outbox
    assert outbox is not None
    [item] = await outbox.list("tnt_a")
    assert item.to == "ada@corp.example"
    m = LINK.search(item.text)
    assert m is not None and m.group(1) == r.json()["token"]
    ok = await api.client.post(f"/v1/invitations/{m.group(1)}/accept",
                               json={"oidc_sub": "idp|ada"})
    assert ok.status_code == 201 and ok.json()["tenant_id"] == "tnt_a"


async def test_with_smtp_settings_the_invitation_goes_to_the_smtp_server(tmp_path: Path
                                                                         ) -> None:
    with running_smtp() as smtp:
        c = build(Settings(data_dir=tmp_path, smtp_host=smtp.host, smtp_port=smtp.port,
                           mail_from="team@vanta.test",
                           public_app_url="https://app.example", **UNLIMITED))
        await c.migrate()
        await create_tenant(c.uow(), tenant_id="tnt_a", name="Acme")
        await grant_plan(c.uow(), tenant_id="tnt_a", plan_id="pro", actor="test")
        app = create_app(c, run_dispatcher=False)
        try:
            async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://test",
                    event_hooks={"request": [add_idempotency_key]}) as client:
                tok = c.issuer.issue("owner-1", "tnt_a", ALL_SCOPES, roles=["owner"])
                r = await client.post("/v1/invitations",
                                      headers={"Authorization": f"Bearer {tok}"},
                                      json={"email": "bo@corp.example", "role": "auditor"})
                assert r.status_code == 201 and r.json()["mailed"] is True
                [msg] = smtp.received
                assert smtp.envelopes == [("team@vanta.test", ["bo@corp.example"])]
                assert "Acme" in plain_text(msg) and "auditor" in str(msg["Subject"])
                m = LINK.search(plain_text(msg))
                assert m is not None and m.group(0).startswith("https://app.example/app/")
                ok = await client.post(f"/v1/invitations/{m.group(1)}/accept",
                                       json={"oidc_sub": "idp|bo"})
                assert ok.status_code == 201 and ok.json()["role"] == "auditor"
                assert not (tmp_path / "outbox").exists()  # nothing went to the local outbox
        finally:
            await c.close()
