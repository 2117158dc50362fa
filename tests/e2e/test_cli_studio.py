"""``vanta studio`` as a real process: the run, its table and answer, and refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.e2e.test_cli_ops import vanta
from vanta.application.followers import register_follower
from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings


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
    for i, (side, qty, px) in enumerate([("buy", 10, 100), ("buy", 5, 120), ("sell", 15, 90)]):
        order = parse_order_input({"id": f"o{i}", "vault_id": "V1", "symbol": "AAPL",
                                   "side": side, "qty": qty, "ref_price": px})
        await submit_manager_order(c.uow(), tenant_id="t1", order=order, source="api",
                                   actor="test")
    await c.close()
    return row.follower_id


def test_studio_prints_the_table_and_writes_the_answer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fid = asyncio.run(_seed(data, "pro"))
    out = tmp_path / "run.json"
    r = vanta(data, "studio", "V1", "--scale", "0.5", "--compare", "1", "--compare",
              "scale=0.5,protections.max_order_usd=100", "--last", "10", "--nav", "10000",
              "--follower", fid, "--tenant", "t1", "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "scale 0.5" in r.stdout and "actual" in r.stdout and "sha256" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["orders"] == 3 and len(doc["summary"]) == 3
    # scale 1 is the follower's own setting: its recorded children, exactly
    assert doc["differing_orders"][1] == 0 and doc["differing_orders"][0] == 3
    assert doc["summary"][1]["final_nav"] == doc["actual"]["final_nav"] == "9750"
    assert doc["summary"][2]["skipped"] == {"cap_exhausted": 1}


def test_studio_refusals_are_one_line_and_exit_code_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_seed(data, "core"))
    r = vanta(data, "studio", "V1", "--tenant", "t1")
    assert r.returncode == 2 and "plan_lacks_feature" in r.stderr


def test_bad_settings_and_navs_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_seed(data, "pro"))
    r = vanta(data, "studio", "V1", "--tenant", "t1", "--compare", "max_order_usd=100")
    assert r.returncode == 2 and "unknown_field" in r.stderr, r.stderr
    r = vanta(data, "studio", "V1", "--tenant", "t1", "--nav", "0")
    assert r.returncode == 2 and "invalid_nav" in r.stderr
