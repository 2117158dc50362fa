"""Exports end to end: a SQLite database seeded through the application layer over two days,
exported to the local store and to S3 (SeaweedFS), verified, tampered with, exported again."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from vanta.adapters.db.engine import make_engine
from vanta.adapters.db.migrate import upgrade_async
from vanta.adapters.db.tables import audit_events, audit_leaves
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.adapters.objectstore import ObjectStore
from vanta.adapters.objectstore.local import LocalObjectStore
from vanta.adapters.secrets.local import LocalSecretStore
from vanta.adapters.webhooks.sender import SendResult
from vanta.application.bridged import BrokerRegistry, confirm_fills
from vanta.application.dispatch import DispatchConfig, Dispatcher
from vanta.application.exports import (
    AuditChainBroken,
    DayNotClosed,
    ExportConflict,
    Exporter,
    audit_key,
    audit_manifest_key,
    trade_log_key,
)
from vanta.application.followers import register_follower
from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.application.ports.brokers import BrokerAck, BrokerOrder, Fill, OrderReport, OrderStatus
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.domain.audit import GENESIS_HASH
from vanta.domain.errors import NotFound
from vanta.entrypoints.cli.exports_cli import exports_app

D1, D2 = date(2026, 1, 5), date(2026, 1, 6)
LATER = datetime(2026, 1, 10, tzinfo=UTC)  # both days are over


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


class FailingSender:
    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        return SendResult(503, 1, "unavailable", None)


class FillingBroker:
    """A broker that accepts every order and fills it at once, in one trade."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.orders: dict[str, BrokerOrder] = {}

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        self.orders[order.client_order_id] = order
        return BrokerAck(order.client_order_id, f"B-{order.client_order_id[:8]}",
                         OrderStatus.NEW)

    async def order_report(self, client_order_id: str) -> OrderReport:
        o = self.orders[client_order_id]
        price = Decimal("190.25")
        return OrderReport(client_order_id, f"B-{client_order_id[:8]}", o.symbol, o.side,
                           OrderStatus.FILLED, o.qty, o.qty, price,
                           fills=(Fill(f"T-{client_order_id[:8]}", o.qty, price,
                                       self.clock()),))

    async def cancel(self, client_order_id: str) -> None:
        return None

    async def positions(self) -> dict[str, Decimal]:
        return {}

    async def account_nav(self) -> Decimal:
        return Decimal(0)

    async def balances(self) -> dict[str, Decimal]:
        return {"USD": Decimal(0)}

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Seeded:
    db: Path
    webhook_fo: str  # D1, dead-lettered
    bridged_fo: str  # D1, filled


async def seed(data_dir: Path) -> Seeded:
    """Day 1: a tenant, a vault, a webhook follower and a bridged one, an order; the webhook
    delivery fails into the dead-letter queue, the bridged one fills. Day 2: another order."""
    db = data_dir / "vanta.db"
    url = f"sqlite+aiosqlite:///{db}"
    await upgrade_async(url)
    engine = make_engine(url)
    clock = Clock(datetime(2026, 1, 5, 10, tzinfo=UTC))

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, clock=clock)

    secrets = LocalSecretStore(data_dir / "secrets")
    await create_tenant(uow(), tenant_id="tnt_a", name="A")
    await grant_plan(uow(), tenant_id="tnt_a", plan_id="institutional", actor="test")
    await create_vault(uow(), tenant_id="tnt_a", vault_id="VA", label="A")
    hooked, _ = await register_follower(
        uow(), secrets, tenant_id="tnt_a", vault_id="VA", actor="test", clock=clock,
        raw={"scale": "0.5", "webhook": {"url": "https://follower.example/hook"}})
    bridged, _ = await register_follower(
        uow(), secrets, tenant_id="tnt_a", vault_id="VA", actor="test", clock=clock,
        raw={"scale": "0.25", "bridged": {"broker": "paper"}})
    res = await submit_manager_order(
        uow(), tenant_id="tnt_a", source="api", actor="test", clock=clock,
        order=parse_order_input({"id": "M-1", "vault_id": "VA", "symbol": "AAPL",
                                 "side": "buy", "qty": 40, "ref_price": 190}))
    assert res.expansion is not None
    children = {c.follower_id: c.fo_id for c in res.expansion.children}
    broker = FillingBroker(clock)
    brokers = BrokerRegistry(secrets.get, factory=lambda *_: broker)
    dispatcher = Dispatcher(uow_factory=uow, sender=FailingSender(), secrets=secrets,
                            config=DispatchConfig(retry_schedule=()), clock=clock,
                            brokers=brokers)
    await dispatcher.run_once()
    await confirm_fills(uow, brokers, clock=clock)
    clock.now = datetime(2026, 1, 6, 9, tzinfo=UTC)
    await submit_manager_order(
        uow(), tenant_id="tnt_a", source="api", actor="test", clock=clock,
        order=parse_order_input({"id": "M-2", "vault_id": "VA", "symbol": "MSFT",
                                 "side": "buy", "qty": 10, "ref_price": 400}))
    await engine.dispose()
    return Seeded(db, children[hooked.follower_id], children[bridged.follower_id])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return asyncio.run(seed(tmp_path_factory.mktemp("seeded")))


@pytest.fixture
def data_dir(template: Seeded, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(template.db, d / "vanta.db")
    return d


@pytest.fixture
async def engine(data_dir: Path) -> AsyncIterator[Any]:
    e = make_engine(f"sqlite+aiosqlite:///{data_dir / 'vanta.db'}")
    yield e
    await e.dispose()


@dataclass
class Target:
    store: ObjectStore
    tamper: Any  # async (key, bytes) -> None: overwrite behind the store's back


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.integration.test_s3_objectstore import run_weed
    with run_weed(tmp_path_factory.mktemp("weed")) as w:
        yield w


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "local":
        store = LocalObjectStore(tmp_path / "objects")

        async def tamper_local(key: str, data: bytes) -> None:
            path = store.root / key
            path.write_bytes(data)

        return Target(store, tamper_local)
    from tests.integration.test_s3_objectstore import new_bucket
    from vanta.adapters.objectstore.s3 import S3ObjectStore
    w = request.getfixturevalue("weed")
    bucket = new_bucket()
    s3 = S3ObjectStore(w.config(bucket))

    async def tamper_s3(key: str, data: bytes) -> None:
        await asyncio.to_thread(w.raw().put_object, Bucket=bucket, Key=key, Body=data)

    return Target(s3, tamper_s3)


def exporter(engine: Any, store: ObjectStore, now: datetime = LATER) -> Exporter:
    return Exporter(lambda: SqlUnitOfWork(engine), store, clock=lambda: now)


async def test_export_verify_tamper_and_rerun(engine: Any, target: Target,
                                              template: Seeded) -> None:
    ex = exporter(engine, target.store)
    first = [await ex.export_audit(D1), await ex.export_audit(D2),
             await ex.rollup_trade_log(D1), await ex.rollup_trade_log(D2)]
    assert all(r.created for r in first)
    for day in (D1, D2):
        report = await ex.verify_export(day)
        assert report.ok, report.problems
    # the same database again: byte-identical objects, every put a no-op
    again = [await ex.export_audit(D1), await ex.export_audit(D2),
             await ex.rollup_trade_log(D1), await ex.rollup_trade_log(D2)]
    assert not any(r.created for r in again)
    assert [(o.key, o.sha256) for r in again for o in r.objects] == [
        (o.key, o.sha256) for r in first for o in r.objects]
    # one event edited in the stored export: verification fails, the database is untouched
    body = (await target.store.get(audit_key(D1))).decode().splitlines()
    edited = json.loads(body[3])
    edited["actor"] = "mallory"
    body[3] = json.dumps(edited, sort_keys=True, separators=(",", ":"))
    await target.tamper(audit_key(D1), ("\n".join(body) + "\n").encode())
    report = await ex.verify_export(D1)
    assert not report.ok and any(audit_key(D1) in p for p in report.problems), report
    assert (await ex.verify_export(D2)).ok, "the other day's export is intact"
    # exporting again does not overwrite the tampered object: it reports the conflict
    with pytest.raises(ExportConflict):
        await ex.export_audit(D1)


async def test_audit_export_content_and_day_chaining(engine: Any, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "o")
    ex = exporter(engine, store)
    r1, r2 = await ex.export_audit(D1), await ex.export_audit(D2)
    m1 = json.loads(await store.get(audit_manifest_key(D1)))
    m2 = json.loads(await store.get(audit_manifest_key(D2)))
    assert m1 == r1.manifest and m2 == r2.manifest
    assert m1["first_seq"] == 1 and m1["prev_hash"] == GENESIS_HASH
    assert m2["first_seq"] == m1["last_seq"] + 1 and m2["prev_hash"] == m1["last_hash"]
    lines = (await store.get(audit_key(D1))).decode().splitlines()
    assert len(lines) == m1["event_count"] == r1.count
    events = [json.loads(line) for line in lines]
    assert all(e["ts"].startswith("2026-01-05") for e in events)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    async with SqlUnitOfWork(engine) as uow:
        db_events = await uow.audit.all()
    assert events[-1]["hash"] == db_events[len(events) - 1].hash == m1["last_hash"]
    assert m2["last_hash"] == db_events[-1].hash
    # a day without events still gets a manifest that carries the chain across it
    before = await ex.export_audit(date(2026, 1, 4))
    after = await ex.export_audit(date(2026, 1, 7))
    assert before.manifest is not None and after.manifest is not None
    assert before.count == 0 and before.manifest["prev_hash"] == GENESIS_HASH
    assert after.manifest["prev_hash"] == after.manifest["last_hash"] == m2["last_hash"]
    assert (await ex.verify_export(date(2026, 1, 7))).ok


async def test_trade_log_lists_children_with_states_and_fills(
        engine: Any, tmp_path: Path, template: Seeded) -> None:
    store = LocalObjectStore(tmp_path / "o")
    ex = exporter(engine, store)
    res = await ex.rollup_trade_log(D1)
    lines = [json.loads(x) for x in (await store.get(trade_log_key(D1))).splitlines()]
    assert res.count == len(lines) == 2
    by_fo = {line["fo_id"]: line for line in lines}
    hooked, bridged = by_fo[template.webhook_fo], by_fo[template.bridged_fo]
    assert hooked["state"] == "dlq" and hooked["fills"] == []
    assert (hooked["manager_order_id"], hooked["symbol"], hooked["side"], hooked["qty"]) == \
        ("M-1", "AAPL", "buy", "20")
    assert bridged["state"] == "confirmed" and bridged["filled_qty"] == "10"
    assert [(f["qty"], f["price"]) for f in bridged["fills"]] == [("10", "190.25")]
    await ex.export_audit(D1)
    assert (await ex.verify_export(D1)).ok, "each line names the audit event that created it"
    d2 = await ex.rollup_trade_log(D2)
    assert d2.count == 2


async def test_a_broken_chain_is_never_exported(engine: Any, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "o")
    async with engine.begin() as conn:
        await conn.execute(update(audit_events).where(audit_events.c.seq == 3)
                           .values(actor="mallory"))
    with pytest.raises(AuditChainBroken) as e:
        await exporter(engine, store).export_audit(D2)
    assert e.value.seq == 3
    assert await store.list() == []


async def test_batch_events_travel_with_their_records(engine: Any, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "o")
    ex = exporter(engine, store)
    await ex.export_audit(D1)
    lines = [json.loads(x) for x in (await store.get(audit_key(D1))).splitlines()]
    batches = [e for e in lines if e["action"] == "dispatch:batch"]
    assert batches and all(len(e["records"]) == e["payload"]["size"] for e in batches)
    assert all("records" not in e for e in lines if e["action"] != "dispatch:batch")
    assert (await ex.verify_export(D1)).ok


async def test_an_altered_batch_record_is_never_exported(engine: Any, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "o")
    async with engine.begin() as conn:
        first = (await conn.execute(audit_leaves.select().order_by(
            audit_leaves.c.event_id, audit_leaves.c.idx).limit(1))).first()
        assert first is not None
        ts = (await conn.execute(audit_events.select().where(
            audit_events.c.event_id == first.event_id))).one().ts
        await conn.execute(update(audit_leaves).where(
            audit_leaves.c.event_id == first.event_id, audit_leaves.c.idx == first.idx)
            .values(record=first.record.replace('"dispatcher"', '"mallory"')))
    with pytest.raises(AuditChainBroken):
        await exporter(engine, store).export_audit(date.fromisoformat(ts[:10]))
    assert await store.list() == []


async def test_verify_notices_a_database_rewritten_after_export(engine: Any,
                                                                tmp_path: Path) -> None:
    ex = exporter(engine, LocalObjectStore(tmp_path / "o"))
    await ex.export_audit(D1)
    async with engine.begin() as conn:
        await conn.execute(update(audit_events).where(audit_events.c.seq == 2)
                           .values(actor="mallory"))
    report = await ex.verify_export(D1)
    assert not report.ok and any(p.startswith("database:") for p in report.problems)
    assert (await ex.verify_export(D1, check_database=False)).ok


async def test_open_days_are_refused(engine: Any, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "o")
    ex = exporter(engine, store, now=datetime(2026, 1, 6, 0, 2, tzinfo=UTC))
    with pytest.raises(DayNotClosed):  # D1 ended 2 minutes ago: inside the grace period
        await ex.export_audit(D1)
    with pytest.raises(DayNotClosed):
        await ex.rollup_trade_log(D2)
    assert await store.list() == []


async def test_dead_letters_archive(engine: Any, tmp_path: Path, template: Seeded) -> None:
    store = LocalObjectStore(tmp_path / "o")
    ex = exporter(engine, store)
    res = await ex.archive_dead_letters("tnt_a")
    assert res.objects[0].key == "dlx/tnt_a/20260110T000000.000000Z.jsonl"
    lines = [json.loads(x) for x in (await store.get(res.objects[0].key)).splitlines()]
    assert [(x["fo_id"], x["queue"], x["dispatch_attempts"]) for x in lines] == [
        (template.webhook_fo, "mirror_dispatch_dlx", 1)]
    assert not (await ex.archive_dead_letters("tnt_a")).created, "a retry is a no-op"
    with pytest.raises(NotFound):
        await ex.archive_dead_letters("tnt_nobody")


async def test_verify_reports_a_missing_export(engine: Any, tmp_path: Path) -> None:
    report = await exporter(engine, LocalObjectStore(tmp_path / "o")).verify_export(D1)
    assert not report.ok and "no audit export" in report.problems[0]


def test_cli_local_and_s3(data_dir: Path, weed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    for var in ("VANTA_S3_BUCKET", "VANTA_S3_ENDPOINT", "VANTA_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    dd = ["--data-dir", str(data_dir)]
    r = runner.invoke(exports_app, ["audit", "--date", "2026-01-05", *dd])
    assert r.exit_code == 0, r.output
    assert (data_dir / "objects" / audit_key(D1)).is_file()
    r = runner.invoke(exports_app, ["audit", "--date", "2026-01-05", *dd])
    assert r.exit_code == 0 and "unchanged" in r.output
    assert runner.invoke(exports_app, ["trade-log", "--date", "2026-01-05", *dd]).exit_code == 0
    r = runner.invoke(exports_app, ["dlx", "--tenant", "tnt_a", *dd])
    assert r.exit_code == 0 and "dead letters: 1" in r.output, r.output
    r = runner.invoke(exports_app, ["verify", "--date", "2026-01-05", *dd])
    assert r.exit_code == 0, r.output
    assert runner.invoke(exports_app, ["verify", "--date", "2026-01-06", *dd]).exit_code == 1
    assert runner.invoke(exports_app, ["audit", "--date", "05/01/2026", *dd]).exit_code == 2
    r = runner.invoke(exports_app, ["audit", "--date", datetime.now(UTC).date().isoformat(),
                                    *dd])
    assert r.exit_code == 1 and "day_not_closed" in r.output
    env = {"VANTA_S3_BUCKET": "vanta-cli-exports", "VANTA_S3_ENDPOINT": weed.endpoint,
           "AWS_ACCESS_KEY_ID": weed.access_key, "AWS_SECRET_ACCESS_KEY": weed.secret_key}
    r = runner.invoke(exports_app, ["audit", "--date", "2026-01-06", *dd], env=env)
    assert r.exit_code == 0 and "written" in r.output, r.output
    r = runner.invoke(exports_app, ["verify", "--date", "2026-01-06", *dd], env=env)
    assert r.exit_code == 0, r.output
    bad = {**env, "AWS_SECRET_ACCESS_KEY": "wrong"}
    r = runner.invoke(exports_app, ["verify", "--date", "2026-01-06", *dd], env=bad)
    assert r.exit_code == 1 and "object store" in r.output, r.output
