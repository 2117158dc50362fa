"""Alerts that reach a person, end to end: a follower's endpoint answers 410 and then its
children dead-letter; the operators' channels (a signed webhook to a real local HTTP
receiver, and email to a real ``aiosmtpd`` server on loopback) receive one alert per kind and
follower. Also: the channel routes' bad input (problem+json with stable codes), tenant
scoping, narrowed tokens and the test alert."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.http_helpers import UNLIMITED, add_idempotency_key
from tests.smtp_server import SmtpServer, running_smtp
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant, create_vault
from vanta.bootstrap import Container, build
from vanta.config import Settings
from vanta.entrypoints.api.app import create_app, run_scheduler
from vanta.receiving import WebhookVerificationError, verify


@dataclass
class Receiver:
    """Follower endpoints answer ``follower_status``; ``/ops`` is the operators' URL."""

    follower_status: int = 410
    alerts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def follower(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=self.follower_status)

    async def ops(self, request: web.Request) -> web.Response:
        self.alerts.append((dict(request.headers), await request.read()))
        return web.Response(status=204)


@dataclass
class Env:
    c: Container
    http: httpx.AsyncClient
    receiver: Receiver
    inbox: SmtpServer  # the real SMTP server the one mailer talks to
    base: str

    async def drain(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await self.c.dispatcher.run_once()
            async with self.c.uow() as uow:
                if await uow.outbox.pending_count("mirror.dispatch") == 0:
                    return
        raise TimeoutError("outbox did not drain")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
async def env(tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[Env]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{key}", receiver.follower)
    app.router.add_post("/ops", receiver.ops)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    c = build(Settings(data_dir=tmp_path, retry_schedule_seconds=[0.01],
                       retry_jitter_fraction=0, webhook_allowlist=["127.0.0.1/32"],
                       webhook_timeout_seconds=2, smtp_host="127.0.0.1",
                       smtp_port=smtp.port, smtp_from="alerts@vanta.test",
                       mail_from="team@vanta.test", **UNLIMITED))
    await c.migrate()
    for t in ("tnt_a", "tnt_b"):
        await create_tenant(c.uow(), tenant_id=t, name=t)
    await create_vault(c.uow(), tenant_id="tnt_a", vault_id="VA", label="A")
    tok = c.issuer.issue("ops", "tnt_a", ALL_SCOPES)
    try:
        async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(c, run_dispatcher=False)),
                base_url="http://t", headers={"Authorization": f"Bearer {tok}"},
                event_hooks={"request": [add_idempotency_key]}) as http:
            yield Env(c, http, receiver, smtp, f"http://127.0.0.1:{port}")
    finally:
        await c.close()
        await runner.cleanup()


async def _channels(env: Env) -> str:
    r = await env.http.post("/v1/alert-channels", json={"kind": "webhook",
                                                         "url": f"{env.base}/ops"})
    assert r.status_code == 201, r.text
    secret = r.json()["signing_secret"]
    assert secret.startswith("whsec_")
    r = await env.http.post("/v1/alert-channels", json={
        "kind": "email", "email": "oncall@example.com",
        "kinds": ["dead_letter", "endpoint_disabled"]})
    assert r.status_code == 201, r.text
    return str(secret)


async def test_a_410_and_the_dead_letters_after_it_reach_the_operators(env: Env) -> None:
    secret = await _channels(env)
    r = await env.http.post("/v1/vaults/VA/followers",
                            json={"webhook": {"url": f"{env.base}/hooks/f"}})
    fid = r.json()["follower_id"]
    for oid in ("M-1", "M-2", "M-3"):  # 410, then two dead letters (endpoint disabled)
        r = await env.http.post("/v1/manager-orders", json={
            "id": oid, "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10})
        assert r.status_code == 201, r.text
        await env.drain()
    assert env.receiver.alerts == [] and env.inbox.received == [], "queued, not yet sent"
    assert env.c.alerts is not None
    assert await env.c.alerts.run_once() == 3
    kinds = []
    for headers, raw in env.receiver.alerts:
        verify(headers, raw, secret, require="both")  # both signature schemes, fresh
        body = json.loads(raw)
        assert headers["webhook-id"] == body["alert_id"]
        kinds.append((body["kind"], body["subject"], body["detail"]["follower_id"]))
    # the second dead letter of the same follower is a duplicate: held back
    assert sorted(kinds) == [("dead_letter", fid, fid), ("endpoint_disabled", fid, fid)]
    with pytest.raises(WebhookVerificationError):
        verify(env.receiver.alerts[0][0], env.receiver.alerts[0][1] + b" ", secret)
    assert sorted(str(m["Subject"]).split(":")[0] for m in env.inbox.received) == [
        "[vanta] a child order was dead-lettered after its last retry",
        "[vanta] a follower's webhook endpoint was disabled (410 Gone)"]
    # the alerts' own sender (VANTA_SMTP_FROM), not the invitations' (VANTA_MAIL_FROM)
    assert env.inbox.envelopes == [("alerts@vanta.test", ["oncall@example.com"])] * 2
    assert all(m["From"] == "alerts@vanta.test" and m["X-Vanta-Tenant"] == "tnt_a"
               and m["Message-ID"] and m["Date"] for m in env.inbox.received)
    assert await env.c.alerts.run_once() == 0, "nothing is sent twice"


async def test_a_test_alert_goes_to_the_one_channel_asked_for(env: Env) -> None:
    await _channels(env)
    listed = (await env.http.get("/v1/alert-channels")).json()["items"]
    assert [c["kind"] for c in listed] == ["webhook", "email"]
    assert all("secret" not in json.dumps(c) for c in listed)
    mail_channel = listed[1]["channel_id"]
    r = await env.http.post(f"/v1/alert-channels/{mail_channel}/test")
    assert r.status_code == 202, r.text
    assert env.c.alerts is not None and await env.c.alerts.run_once() == 1
    assert env.receiver.alerts == []
    [(_, rcpt)], [msg] = env.inbox.envelopes, env.inbox.received
    assert rcpt == ["oncall@example.com"] and "test alert" in str(msg["Subject"])


BAD_INPUT: list[tuple[Any, str]] = [
    ({"url": "https://ops.example/a"}, "invalid_alert_channel"),
    ({"kind": "sms", "url": "https://ops.example/a"}, "invalid_alert_channel"),
    ({"kind": "webhook"}, "invalid_webhook_url"),
    ({"kind": "webhook", "url": "ftp://ops.example/a"}, "invalid_webhook_url"),
    ({"kind": "webhook", "url": "http://10.1.2.3/a"}, "webhook_url_not_deliverable"),
    ({"kind": "webhook", "url": "http://169.254.169.254/a"}, "webhook_url_not_deliverable"),
    ({"kind": "email", "email": "not an address"}, "invalid_email"),
    ({"kind": "email"}, "invalid_email"),
    ({"kind": "email", "email": "a@example.com", "kinds": []}, "invalid_alert_kinds"),
    ({"kind": "email", "email": "a@example.com", "kinds": ["weather"]},
     "invalid_alert_kinds"),
    ({"kind": "email", "email": "a@example.com", "to": "b@example.com"},
     "invalid_alert_channel"),
    ([], "invalid_alert_channel"),
]


async def test_bad_channel_input_is_a_problem_with_a_stable_code(env: Env) -> None:
    for body, code in BAD_INPUT:  # one server for every case: each would cost a migration
        r = await env.http.post("/v1/alert-channels", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code, (body, r.text)
    assert (await env.http.get("/v1/alert-channels")).json()["items"] == []


async def test_another_tenants_channel_is_not_found_and_narrowed_tokens_are_refused(
        env: Env) -> None:
    await _channels(env)
    cid = (await env.http.get("/v1/alert-channels")).json()["items"][0]["channel_id"]
    other = {"Authorization": f"Bearer {env.c.issuer.issue('x', 'tnt_b', ALL_SCOPES)}"}
    assert (await env.http.get("/v1/alert-channels", headers=other)).json()["items"] == []
    for method, path in (("DELETE", f"/v1/alert-channels/{cid}"),
                         ("POST", f"/v1/alert-channels/{cid}/test")):
        r = await env.http.request(method, path, headers=other)
        assert r.status_code == 404 and r.json()["code"] == "alert_channel_not_found"
    narrowed = env.c.issuer.issue("x", "tnt_a", ALL_SCOPES, vault_ids=["VA"])
    r = await env.http.get("/v1/alert-channels",
                           headers={"Authorization": f"Bearer {narrowed}"})
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    assert (await env.http.delete(f"/v1/alert-channels/{cid}")).status_code == 204
    assert (await env.http.delete(f"/v1/alert-channels/{cid}")).status_code == 404


async def test_the_scheduler_sends_queued_alerts_and_snapshots_the_vaults(env: Env) -> None:
    await _channels(env)
    cid = (await env.http.get("/v1/alert-channels")).json()["items"][0]["channel_id"]
    assert (await env.http.post(f"/v1/alert-channels/{cid}/test")).status_code == 202
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(env.c, stop, interval=0.05))
    try:
        deadline = time.monotonic() + 10
        while not env.receiver.alerts and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert [json.loads(b)["kind"] for _, b in env.receiver.alerts] == ["test"]
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert await env.c.object_store().list("snapshots/") == [
        f"snapshots/tnt_a/VA/{today}T000000.000000Z-scheduled.json"]


async def test_without_smtp_email_channels_are_refused_and_nothing_goes_to_the_outbox(
        tmp_path: Path) -> None:
    """The embedded profile without SMTP: invitations land in the local outbox, operator
    alerts do not (an unread folder is not an operator reached): 409, as before."""
    c = build(Settings(data_dir=tmp_path))
    await c.migrate()
    await create_tenant(c.uow(), tenant_id="tnt_a", name="A")
    tok = c.issuer.issue("ops", "tnt_a", ALL_SCOPES)
    try:
        async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(c, run_dispatcher=False)),
                base_url="http://t", headers={"Authorization": f"Bearer {tok}"},
                event_hooks={"request": [add_idempotency_key]}) as http:
            r = await http.post("/v1/alert-channels",
                                json={"kind": "email", "email": "oncall@example.com"})
            assert r.status_code == 409 and r.json()["code"] == "email_not_configured"
            assert r.headers["content-type"].startswith("application/problem+json")
        assert c.alerts is not None and c.alerts.mail is None
        assert c.mail_outbox is not None and await c.mail_outbox.list("tnt_a") == []
    finally:
        await c.close()
