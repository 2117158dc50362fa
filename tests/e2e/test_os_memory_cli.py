"""The OS bridge: `vanta ingest-memory` reads each version of each memory file once, moves
bad files to quarantine/ with a reason, and never applies an order twice."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from vanta.bootstrap import build
from vanta.config import Settings
from vanta.entrypoints.cli.main import app
from vanta.entrypoints.cli.memory_ingest import ingest_folder, ingest_memory

runner = CliRunner()


def _run(tmp: Path, *args: str, **env: str) -> tuple[int, str]:
    r = runner.invoke(app, [*args], env={"VANTA_DATA_DIR": str(tmp / "data"),
                                         "COLUMNS": "250", **env})
    return r.exit_code, r.output


def _order(oid: str, **kw: object) -> dict[str, object]:
    return {"id": oid, "vault_id": "V1", "symbol": "AAPL", "side": "buy", "qty": 5, **kw}


def _setup(tmp: Path) -> Path:
    assert _run(tmp, "tenant-create", "t1")[0] == 0
    assert _run(tmp, "vault-create", "V1", "--tenant", "t1")[0] == 0
    mem = tmp / "memory"
    mem.mkdir()
    return mem


def _order_ids(tmp: Path) -> list[str]:
    async def go() -> list[str]:
        c = build(Settings(data_dir=tmp / "data"))
        async with c.uow() as uow:
            rows = await uow.manager_orders.list("t1", None, 100)
        await c.close()
        return sorted(r.client_order_id for r in rows)
    return asyncio.run(go())


def test_each_file_version_is_ingested_once_and_bad_files_are_quarantined(tmp_path: Path
                                                                          ) -> None:
    mem = _setup(tmp_path)
    (mem / "a.json").write_text(json.dumps({"vault_id": "V1", "orders": [
        {"id": "A1", "symbol": "AAPL", "side": "buy", "qty": 5}, _order("A2")]}))
    (mem / "broken.json").write_text("{not json")
    (mem / "refused.json").write_text(json.dumps([_order("R1"), _order("R2", side="hold")]))
    (mem / "notes.txt").write_text("not an order file")
    code, out = _run(tmp_path, "ingest-memory", str(mem), "--tenant", "t1")
    assert code == 1, out
    assert "ingested" in out and "quarantined" in out and "invalid_side" in out
    assert sorted(p.name for p in mem.iterdir()) == ["a.json", "notes.txt", "quarantine"]
    quarantined = sorted(p.name for p in (mem / "quarantine").iterdir())
    assert quarantined == ["broken.json", "broken.json.reason.txt", "refused.json",
                           "refused.json.reason.txt"]
    reason = (mem / "quarantine" / "refused.json.reason.txt").read_text()
    assert "order 1 (R2): invalid_side" in reason and "sha256: " in reason
    assert "malformed_json" in (mem / "quarantine" / "broken.json.reason.txt").read_text()
    assert _order_ids(tmp_path) == ["A1", "A2", "R1"]  # R1 was valid: it stays accepted

    code, out = _run(tmp_path, "ingest-memory", str(mem), "--tenant", "t1")
    assert code == 0 and "already processed" in out, out
    # a new version of the same file is read again; its orders still apply once
    (mem / "a.json").write_text(json.dumps([_order("A1"), _order("A2"), _order("A3")]))
    code, out = _run(tmp_path, "ingest-memory", str(mem), "--tenant", "t1")
    assert code == 0 and "ingested" in out, out
    assert _order_ids(tmp_path) == ["A1", "A2", "A3", "R1"]
    assert _run(tmp_path, "audit-verify")[0] == 0


def test_the_folder_comes_from_the_setting_and_must_exist(tmp_path: Path) -> None:
    mem = _setup(tmp_path)
    (mem / "one.json").write_text(json.dumps(_order("S1")))
    code, out = _run(tmp_path, "ingest-memory", "--tenant", "t1",
                     VANTA_OS_MEMORY_DIR=str(mem))
    assert code == 0 and "ingested" in out, out
    assert _order_ids(tmp_path) == ["S1"]
    code, out = _run(tmp_path, "ingest-memory", str(tmp_path / "nowhere"), "--tenant", "t1")
    assert code == 2 and "no OS memory folder" in out


def test_an_unknown_tenant_or_a_damaged_state_file_stops_before_any_file(tmp_path: Path
                                                                         ) -> None:
    mem = _setup(tmp_path)
    (mem / "one.json").write_text(json.dumps(_order("S1")))
    code, out = _run(tmp_path, "ingest-memory", str(mem), "--tenant", "nobody")
    assert code == 2 and "tenant nobody does not exist" in out, out
    (tmp_path / "data" / "os_memory_state.json").write_text("{half")
    code, out = _run(tmp_path, "ingest-memory", str(mem), "--tenant", "t1")
    assert code == 2 and "not valid JSON" in out, out
    assert sorted(p.name for p in mem.iterdir()) == ["one.json"]  # nothing quarantined
    assert _order_ids(tmp_path) == []


def test_required_instrument_rules_quarantine_unknown_symbols(tmp_path: Path) -> None:
    mem = _setup(tmp_path)
    (mem / "x.json").write_text(json.dumps([_order("X1", symbol="ZZZZ")]))
    code, out = _run(tmp_path, "ingest-memory", str(mem), "--tenant", "t1",
                     VANTA_REQUIRE_INSTRUMENT_RULES="true")
    assert code == 1 and "unknown_instrument" in out, out
    assert (mem / "quarantine" / "x.json").exists()
    assert _order_ids(tmp_path) == []


def test_a_file_still_being_written_waits_for_the_next_pass(tmp_path: Path) -> None:
    mem = _setup(tmp_path)
    fresh = mem / "fresh.json"
    fresh.write_text("[{\"id\": \"F1\"")  # half written: not quarantined while it settles
    s = Settings(data_dir=tmp_path / "data")

    async def one_pass() -> list[str]:
        c = build(s)
        try:
            return [r.result for r in await ingest_folder(c, s, mem, "t1",
                                                          settle_seconds=60)]
        finally:
            await c.close()
    assert asyncio.run(one_pass()) == ["waiting"]
    assert fresh.exists()
    fresh.write_text(json.dumps([_order("F1")]))
    os.utime(fresh, (0, 0))  # settled long ago

    async def watch_once() -> int:
        stop = asyncio.Event()
        stop.set()  # one pass, then the watch ends
        return await ingest_memory(s, mem, "t1", Console(width=200), watch=True, stop=stop)
    assert asyncio.run(watch_once()) == 0
    assert _order_ids(tmp_path) == ["F1"]
