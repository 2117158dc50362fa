"""The Replay Studio page: a run from the form (CSRF, the user as actor), its chart, summary
and order table; refusals in plain words; Core plans and other tenants' vaults refused."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.web_helpers import sign_in


async def _orders(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "label": "F", "scale": "0.5", "webhook": {"url": "https://f.example/h"}})
    assert r.status_code == 201, r.text
    for i, (side, qty, px) in enumerate([("buy", 10, 100), ("buy", 4, 110), ("sell", 14, 90)]):
        r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
            "id": f"w{i}", "vault_id": "VA", "symbol": "AAPL", "side": side, "qty": qty,
            "ref_price": px})
        assert r.status_code == 201, r.text


async def test_a_run_from_the_page_shows_chart_summary_and_orders(api: Api) -> None:
    await _orders(api)
    token = await sign_in(api.client, "owner")
    page = await api.client.get("/app/studio")
    assert page.status_code == 200 and 'href="/app/studio"' in page.text
    form = {"csrf_token": token, "vault_id": "VA", "last": "10", "starting_nav": "10000",
            "configs": "0.5\nscale=0.25,fees.rate=0.2"}
    refused = await api.client.post("/app/studio", data={**form, "csrf_token": "x"})
    assert refused.status_code == 403
    r = await api.client.post("/app/studio", data=form)
    assert r.status_code == 200, r.text
    assert '<svg class="chart"' in r.text and 'id="studio-summary"' in r.text
    assert "scale 0.5" in r.text and "scale=0.25,fees.rate=0.2" in r.text
    assert r.text.count("<tr>") >= 2 + 3  # two summaries, three orders
    async with api.container.uow() as uow:
        [event] = [e for e in await uow.audit.all() if e.entity == "studio_run"]
    assert event.payload["orders"] == 3 and event.actor  # the signed-in user ran it


async def test_refusals_are_plain_words_and_hidden_vaults_are_not_found(api: Api) -> None:
    await _orders(api)
    token = await sign_in(api.client, "owner")
    bad = await api.client.post("/app/studio", data={
        "csrf_token": token, "vault_id": "VA", "last": "10", "starting_nav": "0",
        "configs": "0.5"})
    assert bad.status_code == 422 and 'id="studio-error"' in bad.text
    hidden = await api.client.post("/app/studio", data={
        "csrf_token": token, "vault_id": "VB", "last": "10", "starting_nav": "100",
        "configs": "0.5"})
    assert hidden.status_code == 404
    await sign_in(api.client, "owner", tenant="tnt_b")
    core = await api.client.get("/app/studio")
    assert core.status_code == 403 and "plan" in core.text
