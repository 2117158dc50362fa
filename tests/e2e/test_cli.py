"""The operator's command line: ingest reports per order, dead letters list and redeliver."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vanta.entrypoints.cli.main import app

runner = CliRunner()


def _run(tmp: Path, *args: str) -> tuple[int, str]:
    r = runner.invoke(app, [*args], env={"VANTA_DATA_DIR": str(tmp), "COLUMNS": "200"})
    return r.exit_code, r.output


def test_ingest_reports_each_order_and_is_idempotent(tmp_path: Path) -> None:
    assert _run(tmp_path, "tenant-create", "t1")[0] == 0
    assert _run(tmp_path, "vault-create", "V1", "--tenant", "t1")[0] == 0
    queue = tmp_path / "autotrade_queue.json"
    queue.write_text(json.dumps([
        {"id": "A", "vault_id": "V1", "symbol": "AAPL", "side": "buy", "qty": 5},
        {"id": "B", "vault_id": "V1", "symbol": "AAPL", "side": "hold", "qty": 5},
        {"vault_id": "V1", "symbol": "AAPL", "side": "buy", "qty": 5},
    ]))
    code, out = _run(tmp_path, "ingest", str(queue), "--tenant", "t1")
    assert code == 1, "a rejected order makes the exit code non-zero"
    assert "accepted" in out and "invalid_side" in out and "missing_field (id)" in out
    code, out = _run(tmp_path, "ingest", str(queue), "--tenant", "t1")
    assert "already ingested" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert _run(tmp_path, "ingest", str(bad), "--tenant", "t1")[0] == 2
    code, out = _run(tmp_path, "audit-verify")
    assert code == 0 and "intact" in out


def test_dlq_commands(tmp_path: Path) -> None:
    assert _run(tmp_path, "tenant-create", "t1")[0] == 0
    code, out = _run(tmp_path, "dlq", "list", "--tenant", "t1")
    assert code == 0
    code, out = _run(tmp_path, "dlq", "redeliver", "--tenant", "t1")
    assert code == 2 and "--id" in out
    code, out = _run(tmp_path, "dlq", "redeliver", "--tenant", "t1", "--since",
                     "2000-01-01T00:00:00Z")
    assert code == 0 and "0 dead letter(s)" in out


def test_vault_count_follows_the_plan(tmp_path: Path) -> None:
    assert _run(tmp_path, "tenant-create", "t1")[0] == 0  # core: one vault
    assert _run(tmp_path, "vault-create", "V1", "--tenant", "t1")[0] == 0
    assert _run(tmp_path, "vault-create", "V1", "--tenant", "t1")[0] == 0  # idempotent
    code, out = _run(tmp_path, "vault-create", "V2", "--tenant", "t1")
    assert code != 0 and "vault_limit_reached" in out
    assert _run(tmp_path, "tenant-create", "t2", "--plan", "pro")[0] == 0
    assert _run(tmp_path, "vault-create", "V3", "--tenant", "t2")[0] == 0
    assert _run(tmp_path, "vault-create", "V4", "--tenant", "t2")[0] == 0
