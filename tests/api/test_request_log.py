"""Every request gets a correlation id, echoed in the response, the log and the audit trail."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from tests.api.conftest import Api
from vanta.adapters.db.tables import audit_events


async def _request_events(api: Api) -> list[dict]:
    await api.client._transport.app.state.audit_batcher.flush()  # type: ignore[attr-defined]
    async with api.container.engine.connect() as conn:
        rows = (await conn.execute(select(audit_events).where(
            audit_events.c.entity == "request").order_by(audit_events.c.seq))).all()
    return [dict(r._mapping) for r in rows]


async def test_correlation_id_is_echoed_audited_and_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vanta.api.requests")
    r = await api.client.get("/v1/vaults/VA", headers={**api.auth(), "X-Request-Id": "abc-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
    events = await _request_events(api)
    assert len(events) == 1
    e = events[0]
    assert e["entity_id"] == "abc-123" and e["action"] == "GET /v1/vaults/{vault_id}"
    assert e["actor"] == "user-1" and e["tenant_id"] == "tnt_a"
    assert e["payload"]["status"] == 200
    assert any(getattr(rec, "status", None) == 200 for rec in caplog.records)


async def test_unauthenticated_and_failed_requests_are_recorded_too(api: Api) -> None:
    r = await api.client.post("/v1/manager-orders", json={})
    generated = r.headers["x-request-id"]
    assert r.status_code == 401 and len(generated) == 32
    bad = await api.client.get("/v1/vaults", headers={"X-Request-Id": "not valid!!"})
    assert bad.headers["x-request-id"] != "not valid!!"
    events = await _request_events(api)
    assert next((e["entity_id"], e["actor"], e["payload"]["status"]) for e in events) == (
        generated, "anonymous", 401)


async def test_audit_chain_stays_intact_with_request_events(api: Api) -> None:
    from vanta.domain.audit import verify_chain
    for _ in range(5):
        await api.client.get("/v1/vaults", headers=api.auth())
    await _request_events(api)
    async with api.container.uow() as uow:
        assert verify_chain(await uow.audit.all()) is None


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}
    await api.container.engine.dispose()
    from sqlalchemy.ext.asyncio import create_async_engine
    api.container.engine = create_async_engine("sqlite+aiosqlite:////nonexistent/dir/x.db")
    r = await api.client.get("/readyz")
    assert r.status_code == 503 and r.json()["code"] == "not_ready"
