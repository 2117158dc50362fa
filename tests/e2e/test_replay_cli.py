"""``vanta replay export`` on the embedded profile, then ``vanta replay verify`` as a separate
process in an empty folder with no settings: offline, with only the package and the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.application.seed import DEMO_TENANT_ID, DEMO_VAULT_ID, seed_demo
from vanta.bootstrap import build
from vanta.config import Settings

VANTA = [str(Path(sys.executable).parent / "vanta")]


async def _order(data_dir: Path) -> str:
    c = build(Settings(data_dir=data_dir, profile="test"))
    await c.migrate()
    await seed_demo(c.uow, c.secrets, webhook_base="http://127.0.0.1:9/hooks")
    order = parse_order_input({"id": "M-1", "vault_id": DEMO_VAULT_ID, "symbol": "AAPL",
                               "side": "buy", "qty": 100, "ref_price": 190})
    done = await submit_manager_order(c.uow(), tenant_id=DEMO_TENANT_ID, order=order,
                                      source="api", actor="test")
    await c.close()
    return done.order.mo_id


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VANTA, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


async def test_export_then_verify_offline_in_another_folder(tmp_path: Path) -> None:
    data = tmp_path / "platform"
    mo_id = await _order(data)
    bare = {k: v for k, v in os.environ.items() if not k.startswith("VANTA_")}
    out = tmp_path / "bundle.tar"
    exported = _run(["replay", "export", mo_id, "--tenant", DEMO_TENANT_ID, "--out", str(out),
                     "--data-dir", str(data)], tmp_path, {**bare, "VANTA_PROFILE": "test",
                                                          "COLUMNS": "300"})
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert f"replay/{DEMO_TENANT_ID}/{mo_id}/" in exported.stdout and "written" in exported.stdout
    assert any((data / "objects" / "replay" / DEMO_TENANT_ID / mo_id).iterdir())

    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    (elsewhere / "bundle.tar").write_bytes(out.read_bytes())
    ok = _run(["replay", "verify", "bundle.tar"], elsewhere, {**bare, "COLUMNS": "300"})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "bundle verified" in ok.stdout and "recomputed byte for byte" in ok.stdout
    assert sorted(p.name for p in elsewhere.iterdir()) == ["bundle.tar"], \
        "verification writes nothing: no data folder, no key"

    flipped = bytearray(out.read_bytes())
    flipped[flipped.index(b'"qty":"') + 7] ^= 0x01
    (elsewhere / "bad.tar").write_bytes(bytes(flipped))
    bad = _run(["replay", "verify", "bad.tar"], elsewhere, {**bare, "COLUMNS": "300"})
    assert bad.returncode == 1 and "does not verify" in bad.stdout, bad.stdout
    assert "was altered" in bad.stdout and "line" in bad.stdout
