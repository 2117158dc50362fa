"""Signing in to the web app through its real code flow, for the API-tier page tests."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(client: httpx.AsyncClient, role: str, tenant: str = "tnt_a") -> str:
    """Signs ``client`` in as the built-in issuer's ``role`` user of ``tenant`` (the
    one-click link: login, authorize with the hint, callback) and returns the CSRF token."""
    client.cookies.clear()
    r = await client.get(f"/app/login?tenant={tenant}&as_role={role}&next=/app/vaults",
                         follow_redirects=True)
    assert r.status_code == 200, r.text
    assert str(r.url).endswith("/app/vaults")
    token = CSRF.search(r.text)
    assert token is not None
    return token.group(1)


async def follower_ids(client: httpx.AsyncClient, auth: dict[str, str],
                       vault: str = "VA", n: int = 2) -> list[str]:
    """Registers ``n`` followers in ``vault`` through the API; their ids, oldest first."""
    out = []
    for i in range(n):
        r = await client.post(f"/v1/vaults/{vault}/followers", headers=auth,
                              json={"label": f"F{i}", "scale": "0.5",
                                    "webhook": {"url": f"https://f{i}.example/hook"}})
        assert r.status_code == 201, r.text
        out.append(r.json()["follower_id"])
    return out
