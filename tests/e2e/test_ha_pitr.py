"""Point-in-time recovery drill: ``vanta ops backup`` takes a base backup of a PostgreSQL
primary that archives its WAL; two orders follow, with a moment T between them; ``vanta ops
restore --target-time T`` lays the backup out in a new data folder, PostgreSQL replays the
archive up to T, and the restored database has the first order and not the second, its
audit chain verifies (``vanta audit-verify``) and ends exactly at the last event before T.
Slow: marked ``ha``."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.e2e.ha_helpers import PgPair
from tests.e2e.test_delivery_faults import VANTA, Processes, _report, _run, _wait_for_file
from tests.e2e.test_ha_nats_cluster import VAULT, _platform
from tests.e2e.test_production_profile import _prod_env
from tests.http_helpers import add_idempotency_key_sync
from tests.integration.test_relay_consumer import _free_port

pytestmark = [pytest.mark.e2e, pytest.mark.ha]


@pytest.fixture
def primary() -> Iterator[PgPair]:
    pair = PgPair()
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()


def _max_seq(pg: PgPair, role: str) -> str:
    return pg.sql(role, "SELECT coalesce(max(seq), 0) FROM audit_events")


def test_restore_to_a_moment_between_two_orders(
    procs: Processes, tmp_path: Path, primary: PgPair,
) -> None:
    started = time.monotonic()
    db_url = primary.url("primary")
    env = _prod_env(tmp_path, db_url, "nats://127.0.0.1:1")
    token = asyncio.run(_platform(Path(env["VANTA_DATA_DIR"]), db_url))
    backups = tmp_path / "backups"
    made = Path(_run([*VANTA, "ops", "backup", "--to", str(backups)], env).strip())
    assert (made / "base.tar").exists()

    port_file = tmp_path / "api.port"
    api_proc = procs.start("api", [*VANTA, "serve", "--no-dispatcher", "--port", "0",
                                   "--port-file", str(port_file)], env)
    api = httpx.Client(base_url=f"http://127.0.0.1:{_wait_for_file(port_file, api_proc, 60)}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=30,
                       event_hooks={"request": [add_idempotency_key_sync]})
    order = {"vault_id": VAULT, "side": "buy", "qty": 3, "ref_price": 100}
    first = api.post("/v1/manager-orders", json={**order, "symbol": "AAPL"})
    assert first.status_code == 201, first.text
    # T: a moment with no commit around it (the request's own audit event is written just
    # after the answer, so wait until the chain stops moving)
    while True:
        time.sleep(1.0)
        before = _max_seq(primary, "primary")
        target = datetime.now(UTC)
        time.sleep(0.3)
        if _max_seq(primary, "primary") == before:
            break
    second = api.post("/v1/manager-orders", json={**order, "symbol": "MSFT"})
    assert second.status_code == 201, second.text
    procs.stop_all()
    primary.sql("primary", "SELECT pg_switch_wal()")
    deadline = time.monotonic() + 30  # the segment holding the second order is archived
    while primary.sql("primary", "SELECT pg_walfile_name(pg_current_wal_lsn()) <= "
                      "coalesce(last_archived_wal, '') FROM pg_stat_archiver") != "t":
        primary.sql("primary", "SELECT pg_switch_wal()")
        assert time.monotonic() < deadline, "the WAL was not archived"
        time.sleep(0.2)

    restored = primary.root / "restored"
    out = _run([*VANTA, "ops", "restore", "--data", str(restored), "--wal-archive",
                str(primary.archive), "--backup", str(made), "--target-time",
                target.strftime("%Y-%m-%dT%H:%M:%S.%f%z")], env)
    assert "restored from" in out
    shutil.chown(restored, "postgres", "postgres")
    subprocess.run(["chown", "-R", "postgres:postgres", str(restored)], check=True)
    primary.ports["restored"] = _free_port()
    try:
        primary.pg_ctl("restored", "-o", f"-p {primary.ports['restored']} -k {primary.root} "
                       "-c listen_addresses=127.0.0.1 -c max_connections=200", "-w", "start")
    except AssertionError as e:
        log = (primary.root / "restored.log").read_text(errors="replace")[-3000:]
        raise AssertionError(log) from e
    deadline = time.monotonic() + 60
    while primary.sql("restored", "SELECT pg_is_in_recovery()") != "f":
        assert time.monotonic() < deadline, "recovery did not end"
        time.sleep(0.2)

    symbols = primary.sql("restored", "SELECT string_agg(symbol, ',') FROM manager_orders")
    assert symbols == "AAPL"  # the first order, not the second
    assert _max_seq(primary, "restored") == before  # the chain ends exactly at T
    assert int(_max_seq(primary, "primary")) > int(before)
    check = subprocess.run([*VANTA, "audit-verify"], capture_output=True, text=True,
                           timeout=120, check=False,
                           env={**env, "VANTA_DATABASE_URL": primary.url("restored")})
    assert check.returncode == 0, check.stdout + check.stderr
    _report("pitr", {"audit_seq_at_target": int(before),
                     "audit_seq_at_end": int(_max_seq(primary, "primary")),
                     "total_s": round(time.monotonic() - started, 1)})
