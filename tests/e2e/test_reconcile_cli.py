"""``vanta reconcile`` and ``vanta worker reconcile`` as real processes: the dry-run table,
--apply, a refusal for a vault in maintenance (exit 2, nothing sent), and the scheduled
worker reconciling every vault on its interval and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import Processes
from tests.e2e.test_cli_ops import VANTA, vanta
from vanta.application.followers import register_follower
from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.application.navs import record_nav
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings

pytestmark = pytest.mark.e2e


async def _seed(data: Path) -> str:
    """Tenant t1 with vaults V1 and V2 (V2 in maintenance); in V1 a follower (scale 0.5, NAV
    10,000) whose child of a 10 AAPL buy was dead-lettered."""
    c = build(Settings(data_dir=data))
    await c.migrate()
    await create_tenant(c.uow(), tenant_id="t1", name="t1")
    await grant_plan(c.uow(), tenant_id="t1", plan_id="pro", actor="test")
    for v in ("V1", "V2"):
        await create_vault(c.uow(), tenant_id="t1", vault_id=v, label=v)
    row, _ = await register_follower(
        c.uow(), c.secrets, tenant_id="t1", vault_id="V1",
        raw={"label": "F", "scale": "0.5", "webhook": {"url": "https://f.example/hooks/f"}},
        actor="test")
    await record_nav(c.uow(), tenant_id="t1", entity="follower", entity_id=row.follower_id,
                     raw={"nav": "10000"}, actor="test")
    sub = await submit_manager_order(
        c.uow(), tenant_id="t1", source="api", actor="m",
        order=parse_order_input({"vault_id": "V1", "symbol": "AAPL", "side": "buy",
                                 "qty": "10", "ref_price": "100"}))
    assert sub.expansion is not None
    async with c.uow() as u:
        for ch in sub.expansion.dispatchable:
            await u.child_orders.update(ch.fo_id, expect_state="pending", state="dlq")
        await u.vaults.set_maintenance("t1", "V2", True)
        await u.commit()
    await c.close()
    return row.follower_id


async def _runs(data: Path) -> list[Any]:
    c = build(Settings(data_dir=data))
    async with c.uow(readonly=True) as u:
        events = [e for e in await u.audit.all() if e.entity == "reconciliation"
                  and e.action == "run"]
    await c.close()
    return events


def test_the_command_shows_a_table_applies_and_refuses_maintenance(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fid = asyncio.run(_seed(data))
    dry = vanta(data, "reconcile", "V1", "--tenant", "t1")
    assert dry.returncode == 0, dry.stderr
    assert "(dry run)" in dry.stdout and fid[:8] in dry.stdout and "buy 5" in dry.stdout
    assert "1 fix-up(s) planned" in dry.stdout
    applied = vanta(data, "reconcile", "V1", "--tenant", "t1", "--apply", "--json")
    assert applied.returncode == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert [(f["follower_id"], f["qty"]) for f in report["fixups"]] == [(fid, "5")]
    assert report["fixups"][0]["fo_id"]
    again = vanta(data, "reconcile", "V1", "--tenant", "t1", "--apply", "--json")
    assert json.loads(again.stdout)["fixups"] == []  # the fix-up is still in flight
    refused = vanta(data, "reconcile", "V2", "--tenant", "t1", "--apply")
    assert refused.returncode == 2 and "vault_in_maintenance" in refused.stderr
    assert len(asyncio.run(_runs(data))) == 3  # the refusal recorded no run
    unknown = vanta(data, "reconcile", "NOPE", "--tenant", "t1")
    assert unknown.returncode == 2 and "vault_not_found" in unknown.stderr


def test_the_worker_reconciles_every_vault_and_stops_on_sigterm(
        procs: Processes, tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_seed(data))
    env = {"VANTA_DATA_DIR": str(data), "VANTA_RECONCILE_INTERVAL_SECONDS": "0.3"}
    worker = procs.start("reconcile", [VANTA, "worker", "reconcile"], {**os.environ, **env})
    deadline = time.monotonic() + 60
    while len(runs := asyncio.run(_runs(data))) < 2:
        assert worker.poll() is None, procs.stderr("reconcile")
        assert time.monotonic() < deadline, runs
        time.sleep(0.3)
    # V1 each pass (the first applies the fix-up, later ones find it in flight); V2 never
    assert {e.payload["vault_id"] for e in runs} == {"V1"}
    assert [e.payload["summary"]["fixups"] for e in runs[:2]] == [1, 0]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0, procs.stderr("reconcile")
    assert "Traceback" not in procs.stderr("reconcile")
