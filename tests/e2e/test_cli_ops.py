"""Operator switches from the command line, as real ``vanta`` processes: the kill switch,
the vault freeze and overlays go through the API's use cases and name the operator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vanta.application.followers import register_follower
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings

VANTA = str(Path(sys.executable).with_name("vanta"))


def vanta(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VANTA_DATA_DIR": str(data), "COLUMNS": "200"}
    return subprocess.run([VANTA, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


async def _seed(data: Path, plan: str) -> str:
    c = build(Settings(data_dir=data))
    await c.migrate()
    await create_tenant(c.uow(), tenant_id="t1", name="t1")
    await grant_plan(c.uow(), tenant_id="t1", plan_id=plan, actor="test")
    await create_vault(c.uow(), tenant_id="t1", vault_id="V1", label="V1")
    row, _ = await register_follower(
        c.uow(), c.secrets, tenant_id="t1", vault_id="V1",
        raw={"label": "F", "scale": "1", "webhook": {"url": "https://f.example/hooks/f"}},
        actor="test")
    await c.close()
    return row.follower_id


async def _read(data: Path, follower_id: str) -> tuple[list[Any], list[Any]]:
    c = build(Settings(data_dir=data))
    async with c.uow(readonly=True) as uow:
        children = await uow.child_orders.list("t1", follower_id=follower_id, mo_id=None,
                                               since=None, limit=100)
        events = await uow.audit.all()
    await c.close()
    return children, events


def _ingest(data: Path, tmp: Path, oid: str) -> None:
    queue = tmp / f"{oid}.json"
    queue.write_text(json.dumps([{"id": oid, "vault_id": "V1", "symbol": "AAPL",
                                  "side": "buy", "qty": 10, "ref_price": 100}]))
    r = vanta(data, "ingest", str(queue), "--tenant", "t1")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not Path(VANTA).exists(), reason="the vanta console script is not installed")
def test_kill_switch_from_the_cli_skips_the_next_child_and_names_the_operator(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    fid = asyncio.run(_seed(data, "core"))
    r = vanta(data, "kill-switch", fid, "on", "--tenant", "t1", "--actor", "ops:alice")
    assert r.returncode == 0, r.stderr
    _ingest(data, tmp_path, "A")
    children, events = asyncio.run(_read(data, fid))
    assert [(c.state.value, c.skip_reason) for c in children] == [("skipped", "kill_switch")]
    ev = [e for e in events if e.entity_id == fid and e.action == "updated"]
    assert ev[-1].actor == "ops:alice"
    assert ev[-1].payload["after"]["kill_switch"] is True

    assert vanta(data, "kill-switch", fid, "off", "--tenant", "t1").returncode == 0
    _ingest(data, tmp_path, "B")
    children, events = asyncio.run(_read(data, fid))
    assert sorted(c.state.value for c in children) == ["pending", "skipped"]
    off = [e for e in events if e.entity_id == fid and e.action == "updated"][-1]
    assert off.actor.startswith("cli:") and off.payload["after"]["kill_switch"] is False


@pytest.mark.skipif(not Path(VANTA).exists(), reason="the vanta console script is not installed")
def test_unknown_ids_are_one_line_and_exit_code_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_seed(data, "core"))
    for args, code in ((["kill-switch", "nope", "on"], "follower_not_found"),
                       (["maintenance", "NOPE", "on"], "vault_not_found"),
                       (["overlay", "NOPE", "--persona", "Apollo"], "vault_not_found")):
        r = vanta(data, *args, "--tenant", "t1")
        assert r.returncode == 2, r.stdout + r.stderr
        assert code in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert "Traceback" not in r.stderr


@pytest.mark.skipif(not Path(VANTA).exists(), reason="the vanta console script is not installed")
def test_maintenance_and_overlay_follow_the_api_rules(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fid = asyncio.run(_seed(data, "core"))
    r = vanta(data, "maintenance", "V1", "on", "--tenant", "t1", "--actor", "ops:bob")
    assert r.returncode == 0, r.stderr
    # core has no flip mode: the plan check of the API refuses it here too
    r = vanta(data, "overlay", "V1", "--flip", "--amplify", "0.5", "--tenant", "t1")
    assert r.returncode == 2 and "flip" in r.stderr.lower()
    r = vanta(data, "overlay", "V1", "--persona", "Nobody", "--tenant", "t1")
    assert r.returncode == 2 and "unknown_persona" in r.stderr
    _, events = asyncio.run(_read(data, fid))
    frozen = [e for e in events if e.entity_id == "V1" and e.action == "maintenance_on"]
    assert frozen and frozen[-1].actor == "ops:bob"
    assert not [e for e in events if e.action == "overlay_applied"]


@pytest.mark.skipif(not Path(VANTA).exists(), reason="the vanta console script is not installed")
def test_overlay_on_a_plan_with_flip_mode(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fid = asyncio.run(_seed(data, "institutional"))
    r = vanta(data, "overlay", "V1", "--flip", "--amplify", "0.5", "--ttl-minutes", "5",
              "--tenant", "t1", "--actor", "ops:carol")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["kind"] == "flip" and out["amplify"] == "0.5" and out["state"] == "active"
    r = vanta(data, "overlay", "V1", "--flip", "--ttl-minutes", "600", "--tenant", "t1")
    assert r.returncode == 2 and "invalid_ttl" in r.stderr
    _, events = asyncio.run(_read(data, fid))
    applied = [e for e in events if e.action == "overlay_applied"]
    assert len(applied) == 1 and applied[0].actor == "ops:carol"
