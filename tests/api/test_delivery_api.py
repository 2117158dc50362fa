"""Delivery over real HTTP to a scripted receiver: retries, terminal errors, 410, dead letters,
redelivery, key rotation, refused targets, metrics, and a delivered record's audit proof."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import update

from tests.fakes.vetter import FakeTargetVetter
from tests.http_helpers import UNLIMITED, add_idempotency_key
from vanta.adapters.db.tables import audit_leaves
from vanta.application.audit_proofs import check_proof
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import Container, build
from vanta.config import Settings
from vanta.domain.audit import AuditEvent, hash_of
from vanta.entrypoints.api.app import create_app
from vanta.receiving import WebhookVerificationError, verify


@dataclass
class Script:
    """Per endpoint key: the statuses to answer, in order (then 200)."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        self.seen.append((key, {k.lower(): v for k, v in request.headers.items()},
                          await request.read()))
        queue = self.statuses.get(key, [])
        status = queue.pop(0) if queue else 200
        return web.Response(status=status, text="scripted",
                            headers=self.headers.get(key, {}) if status != 200 else {})


@dataclass
class Env:
    c: Container
    http: httpx.AsyncClient
    script: Script
    base: str

    async def follower(self, key: str, **kw: Any) -> dict[str, Any]:
        r = await self.http.post("/v1/vaults/VA/followers",
                                 json={"webhook": {"url": f"{self.base}/hooks/{key}"}, **kw})
        assert r.status_code == 201, r.text
        return r.json()

    async def order(self, oid: str, qty: int = 10) -> dict[str, Any]:
        r = await self.http.post("/v1/manager-orders", json={
            "id": oid, "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": qty})
        assert r.status_code == 201, r.text
        out = r.json()
        kids = (await self.http.get(out["links"]["children"])).json()["data"]
        return {**out, "children": kids}

    async def drain(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.c.dispatcher.run_once()
            async with self.c.uow() as uow:
                if await uow.outbox.pending_count("mirror.dispatch") == 0:
                    return
            await asyncio.sleep(0.01)
        raise TimeoutError("outbox did not drain")

    async def child(self, fo_id: str) -> dict[str, Any]:
        rows = (await self.http.get("/v1/follower-orders")).json()["data"]
        return next(r for r in rows if r["fo_id"] == fo_id)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    script = Script()
    app = web.Application()
    app.router.add_post("/hooks/{key}", script.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    c = build(Settings(data_dir=tmp_path, retry_schedule_seconds=[0.01, 0.01, 0.01, 0.01],
                       retry_jitter_fraction=0, webhook_allowlist=["127.0.0.1/32"],
                       webhook_timeout_seconds=2, **UNLIMITED))
    await c.migrate()
    await create_tenant(c.uow(), tenant_id="tnt_a", name="A")
    await create_vault(c.uow(), tenant_id="tnt_a", vault_id="VA", label="A")
    tok = c.issuer.issue("ops", "tnt_a", ALL_SCOPES)
    app = create_app(c, run_dispatcher=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={"Authorization": f"Bearer {tok}"},
                                 event_hooks={"request": [add_idempotency_key]}) as http:
        yield Env(c, http, script, f"http://127.0.0.1:{port}")
    await c.close()
    await runner.cleanup()


async def test_5xx_is_retried_with_every_attempt_recorded(env: Env) -> None:
    f = await env.follower("a")
    env.script.statuses["a"] = [503, 500]
    fo = (await env.order("M-1"))["children"][0]["fo_id"]
    await env.drain()
    assert (await env.child(fo))["state"] == "ack"
    attempts = (await env.http.get(f"/v1/follower-orders/{fo}/attempts")).json()["data"]
    assert [(a["attempt_no"], a["status_code"], a["outcome"]) for a in attempts] == [
        (1, 503, "retry"), (2, 500, "retry"), (3, 200, "ack")]
    assert attempts[0]["response_excerpt"] == "scripted"
    ids = {h["webhook-id"] for k, h, _ in env.script.seen if k == "a"}
    assert ids == {fo}, "every retry carries the same webhook-id"
    for _, h, body in env.script.seen:
        verify(h, body, f["webhook_secret"], require="both")


async def test_other_4xx_is_terminal_and_flagged(env: Env) -> None:
    await env.follower("a")
    env.script.statuses["a"] = [422]
    fo = (await env.order("M-1"))["children"][0]["fo_id"]
    await env.drain()
    child = await env.child(fo)
    assert child["state"] == "failed" and child["last_error"] == "HTTP 422"
    assert len(env.script.seen) == 1
    async with env.c.uow() as uow:
        actions = [r.action for r in await uow.audit.leaves_for("tnt_a", [fo])]
    assert "dispatch:failed" in actions


async def test_retries_exhausted_go_to_dead_letters_and_redeliver_keeps_webhook_id(env: Env
                                                                                   ) -> None:
    await env.follower("a")
    env.script.statuses["a"] = [500] * 5
    body = await env.order("M-1")
    fo = body["children"][0]["fo_id"]
    await env.drain()
    assert (await env.child(fo))["state"] == "dlq"
    assert len(env.script.seen) == 5  # first try + 4 retries
    dl = (await env.http.get("/v1/dead-letters")).json()
    assert dl["queue"] == "mirror_dispatch_dlx" and [d["fo_id"] for d in dl["data"]] == [fo]
    mo = (await env.http.get(f"/v1/manager-orders/{body['mo_id']}")).json()
    assert mo["state"] == "completed"
    r = await env.http.post("/v1/dead-letters/redeliver", json={"since": "2000-01-01T00:00:00Z"})
    assert r.json()["requeued"] == [fo]
    await env.drain()
    assert (await env.child(fo))["state"] == "ack"
    assert env.script.seen[-1][1]["webhook-id"] == fo
    assert (await env.http.get("/v1/dead-letters")).json()["data"] == []
    again = await env.http.post("/v1/dead-letters/redeliver", json={"fo_ids": [fo]})
    assert again.json()["requeued"] == [], "an acknowledged child is not a dead letter"


async def test_410_disables_the_endpoint_until_it_is_fixed(env: Env) -> None:
    f = await env.follower("a")
    env.script.statuses["a"] = [410]
    fo1 = (await env.order("M-1"))["children"][0]["fo_id"]
    await env.drain()
    assert (await env.child(fo1))["state"] == "failed"
    got = (await env.http.get(f"/v1/followers/{f['follower_id']}")).json()
    assert got["webhook"] == {"url": f"{env.base}/hooks/a", "enabled": False,
                              "disabled_reason": "410 Gone"}
    fo2 = (await env.order("M-2"))["children"][0]["fo_id"]
    await env.drain()
    assert len(env.script.seen) == 1, "nothing more is sent to a disabled endpoint"
    child = await env.child(fo2)
    assert child["state"] == "dlq" and "endpoint disabled" in child["last_error"]
    r = await env.http.patch(f"/v1/followers/{f['follower_id']}",
                             json={"webhook": {"url": f"{env.base}/hooks/b"}})
    assert r.json()["webhook"]["enabled"] is True
    await env.http.post("/v1/dead-letters/redeliver", json={"fo_ids": [fo2]})
    await env.drain()
    assert (await env.child(fo2))["state"] == "ack"
    assert env.script.seen[-1][0] == "b"


async def test_retry_after_is_honoured(env: Env) -> None:
    await env.follower("a")
    env.script.statuses["a"] = [429]
    env.script.headers["a"] = {"Retry-After": "1"}
    fo = (await env.order("M-1"))["children"][0]["fo_id"]
    t0 = time.monotonic()
    await env.drain()
    assert (await env.child(fo))["state"] == "ack"
    assert time.monotonic() - t0 >= 0.9


async def test_private_targets_are_refused_without_retry(tmp_path: Path) -> None:
    c = build(Settings(data_dir=tmp_path, retry_schedule_seconds=[0.01],  # no allowlist
                       **UNLIMITED))
    # Registration refuses these now; a follower stored before that (or by the seed) is
    # still refused at send time.
    c.vetter = FakeTargetVetter()
    await c.migrate()
    await create_tenant(c.uow(), tenant_id="t", name="t")
    await create_vault(c.uow(), tenant_id="t", vault_id="V", label="V")
    app = create_app(c, run_dispatcher=False)
    tok = c.issuer.issue("ops", "t", ALL_SCOPES)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={"Authorization": f"Bearer {tok}"},
                                 event_hooks={"request": [add_idempotency_key]}) as http:
        for url in ("http://127.0.0.1:9/h", "http://169.254.169.254/latest", "http://10.1.2.3/"):
            r = await http.post("/v1/vaults/V/followers", json={"webhook": {"url": url}})
            assert r.status_code == 201
        body = (await http.post("/v1/manager-orders", json={
            "id": "M", "vault_id": "V", "symbol": "X", "side": "buy", "qty": 1})).json()
        await c.dispatcher.run_once()
        rows = (await http.get("/v1/follower-orders")).json()["data"]
        assert {r["state"] for r in rows} == {"failed"}
        assert {r["last_error"] for r in rows} <= {"refused: private_address",
                                                    "refused: metadata_address"}
        assert body["mo_id"]
    await c.close()


async def test_rotation_signs_with_both_keys_during_the_overlap(env: Env) -> None:
    f = await env.follower("a")
    old = f["webhook_secret"]
    r = await env.http.post(f"/v1/followers/{f['follower_id']}/webhook/rotate-secret",
                            json={"overlap_seconds": 3600})
    assert r.status_code == 200, r.text
    new = r.json()["webhook_secret"]
    assert new != old and r.json()["previous_valid_until"]
    await env.order("M-1")
    await env.drain()
    _, h, body = env.script.seen[-1]
    verify(h, body, old, require="both")
    verify(h, body, new, require="both")
    r = await env.http.post(f"/v1/followers/{f['follower_id']}/webhook/rotate-secret",
                            json={"overlap_seconds": 0})
    newest = r.json()["webhook_secret"]
    await env.order("M-2")
    await env.drain()
    _, h, body = env.script.seen[-1]
    verify(h, body, newest, require="both")
    verify(h, body, old, require="both")  # its overlap (1 h) is still open
    with pytest.raises(WebhookVerificationError):
        verify(h, body, new, require="both")  # retired with no overlap


async def test_dedicated_signing_key_needs_institutional(env: Env) -> None:
    import base64
    key = "whsec_" + base64.b64encode(b"k" * 32).decode()
    f = await env.follower("a")
    r = await env.http.post(f"/v1/followers/{f['follower_id']}/webhook/rotate-secret",
                            json={"secret": key})
    assert r.status_code == 422 and r.json()["code"] == "plan_lacks_feature"
    g = await env.follower("b", plan="institutional")
    r = await env.http.post(f"/v1/followers/{g['follower_id']}/webhook/rotate-secret",
                            json={"secret": key, "overlap_seconds": 0})
    assert r.status_code == 200 and r.json()["webhook_secret"] == key
    await env.order("M-1")
    await env.drain()
    _, h, body = next(s for s in env.script.seen if s[0] == "b")
    verify(h, body, key, require="both")


async def test_metrics_are_exposed(env: Env) -> None:
    await env.follower("a")
    env.script.statuses["a"] = [500]
    await env.order("M-1")
    await env.drain()
    text = (await env.http.get("/metrics")).text
    for name in ("mirror_dispatch_latency_ms_bucket", "mirror_error_rate",
                 "webhook_retries_total", "broker_submit_success_rate",
                 'mirror_dispatch_attempts_total{outcome="ack"}'):
        assert name in text, name


# --- a delivered child's audit record, proved against its batch event's Merkle root ------


async def _proofs(env: Env, fo: str) -> list[dict]:  # type: ignore[type-arg]
    r = await env.http.get(f"/v1/follower-orders/{fo}/audit-proofs")
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def test_a_delivered_childs_record_is_proved_by_its_batch_root(env: Env) -> None:
    for key in ("a", "b", "c"):
        await env.follower(key)
    children = (await env.order("M-1"))["children"]
    await env.drain()
    for child in children:
        [doc] = await _proofs(env, child["fo_id"])
        assert doc["fields"]["entity_id"] == child["fo_id"]
        assert doc["fields"]["action"] == "dispatch:ack"
        assert doc["fields"]["payload"]["status"] == 200
        assert check_proof(doc) is None
        e = doc["event"]
        assert e["action"] == "dispatch:batch" and e["payload"]["root"] == doc["root"]
        assert hash_of(AuditEvent(e["event_id"], e["seq"], e["entity"], e["entity_id"],
                                  e["action"], e["actor"], e["payload"], e["ts"],
                                  e["prev_hash"], e["hash"], e["tenant_id"],
                                  e["hash_v"])) == e["hash"], "the chain vouches for the root"
        # the proof is bound to this record: another child's record does not pass with it
        other = next(c for c in children if c["fo_id"] != child["fo_id"])
        [theirs] = await _proofs(env, other["fo_id"])
        if theirs["event"]["event_id"] == e["event_id"]:
            assert check_proof({**doc, "record": theirs["record"]}) is not None


async def test_an_altered_record_no_longer_proves(env: Env) -> None:
    await env.follower("a")
    [child] = (await env.order("M-1"))["children"]
    await env.drain()
    [doc] = await _proofs(env, child["fo_id"])
    async with env.c.uow() as uow:
        await uow.outbox.conn.execute(update(audit_leaves).where(
            audit_leaves.c.entity_id == child["fo_id"]).values(
            record=doc["record"].replace('"status":200', '"status":201')))
        await uow.commit()
    [altered] = await _proofs(env, child["fo_id"])
    assert altered["fields"]["payload"]["status"] == 201
    problem = check_proof(altered)
    assert problem is not None and "not proved by the root" in problem


async def test_an_unknown_child_is_404(env: Env) -> None:
    await env.follower("a")
    [child] = (await env.order("M-1"))["children"]
    r = await env.http.get(f"/v1/follower-orders/{child['fo_id']}x/audit-proofs")
    assert r.status_code == 404 and r.json()["code"] == "follower_order_not_found"


async def test_the_feed_opens_a_batch_event_into_its_records(env: Env) -> None:
    """Each delivered child appears in /v1/feed with its own record; the records of one batch
    share the batch event's id, which only the last carries (resuming never skips one)."""
    from tests.api.test_tenancy import _sse
    for key in ("a", "b", "c"):
        await env.follower(key)
    children = (await env.order("M-1"))["children"]
    await env.drain()
    await grant_plan(env.c.uow(), tenant_id="tnt_a", plan_id="institutional", actor="test")
    r = await env.http.get("/v1/feed", params={"follow": "false"})
    assert r.status_code == 200, r.text
    feed = _sse(r.text)
    acks = [e for e in feed if e["data"]["action"] == "dispatch:ack"]
    assert sorted(e["data"]["id"] for e in acks) == sorted(c["fo_id"] for c in children)
    assert all(e["event"] == "follower_order" for e in acks)
    assert "id" in acks[-1] and int(acks[-1]["id"]) == max(int(e["id"]) for e in feed
                                                           if "id" in e)
    ids = [e.get("id") for e in acks]
    assert len({i for i in ids if i}) == len([i for i in ids if i]), "one id per batch event"
