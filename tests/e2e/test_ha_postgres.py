"""PostgreSQL primary + streaming replica on loopback (``initdb``/``pg_basebackup`` from
/usr/lib/postgresql/*/bin, run as the ``postgres`` OS user).

* Lag-tolerant reads go to the replica (``VANTA_DATABASE_REPLICA_URL``): with the replica's
  replay paused, an order the API just accepted is missing from ``GET /v1/manager-orders``
  (a list) but is answered by ``GET /v1/manager-orders/{id}`` (the primary).
* Promotion mid-run: the primary is stopped (``-m immediate``) while an order is being
  delivered, the replica is promoted, and the workers, given both hosts with
  ``target_session_attrs=read-write``, reconnect to the new primary on their own. Every
  child of the order committed before the switch is sent exactly once (no webhook-id is
  answered 2xx twice: a worker whose send landed while the primary died records the answer
  on the new primary instead of sending again) and an order after the switch is accepted and
  delivered.

Slow: marked ``ha``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.ha_helpers import PgPair, fault_figures, register_secrets, seed_followers
from tests.e2e.test_delivery_faults import VANTA, Processes, _report, _wait_for_file
from tests.e2e.test_ha_nats_cluster import TENANT, VAULT, _platform
from tests.e2e.test_production_profile import (
    MASTER_KEY,
    _prod_env,
    _settle,
    _start_consumer,
    _start_receiver,
    _start_relay,
)
from tests.http_helpers import add_idempotency_key_sync
from tests.integration.test_relay_consumer import (
    PrivateNats,
    private_nats,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.e2e, pytest.mark.ha]
ORDER = {"vault_id": VAULT, "side": "buy", "qty": 5, "ref_price": 100}


@pytest.fixture
def pg_pair() -> Iterator[PgPair]:
    pair = PgPair()
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()


def _post_until_accepted(api: httpx.Client, body: dict[str, object], key: str,
                         timeout: float = 60) -> httpx.Response:
    """A client that retries (same Idempotency-Key) while the database is switching."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = api.post("/v1/manager-orders", json=body, headers={"Idempotency-Key": key})
            if r.status_code == 201:
                return r
        except httpx.HTTPError:
            r = None
        assert time.monotonic() < deadline, r.text if r is not None else "no answer"
        time.sleep(0.2)


def test_replica_reads_and_promotion_mid_fan_out(
    procs: Processes, tmp_path: Path, pg_pair: PgPair,
    private_nats: PrivateNats,  # noqa: F811
) -> None:
    from vanta.config import Settings
    started = time.monotonic()
    n = 300
    db_url = pg_pair.failover_url()
    env = _prod_env(tmp_path, db_url, private_nats.url,
                    VANTA_DATABASE_REPLICA_URL=pg_pair.url("replica"))
    data_dir = Path(env["VANTA_DATA_DIR"])
    token = asyncio.run(_platform(data_dir, db_url))
    rcv = _start_receiver(procs, tmp_path, env, "--fail-rate", "0", "--slow-rate", "1",
                          "--slow-ms", "20,60")
    hooks = f"{str(rcv.base_url).rstrip('/')}/hooks"
    register_secrets(rcv, asyncio.run(seed_followers(
        Settings(data_dir=data_dir, database_url=db_url, master_key=MASTER_KEY),
        TENANT, VAULT, n, hooks)))
    port_file = tmp_path / "api.port"
    api_proc = procs.start("api", [*VANTA, "serve", "--no-dispatcher", "--port", "0",
                                   "--port-file", str(port_file)], env)
    api = httpx.Client(base_url=f"http://127.0.0.1:{_wait_for_file(port_file, api_proc, 60)}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=30,
                       event_hooks={"request": [add_idempotency_key_sync]})

    # 1. lists read the replica: pause its replay, and a new order is not listed yet
    pg_pair.sql("replica", "SELECT pg_wal_replay_pause()")
    r0 = api.post("/v1/manager-orders", json={**ORDER, "symbol": "IBM", "qty": 1})
    assert r0.status_code == 201, r0.text
    mo0 = r0.json()["mo_id"]
    assert api.get(f"/v1/manager-orders/{mo0}").status_code == 200  # the primary
    listed = api.get("/v1/manager-orders", params={"limit": 50}).json()["data"]
    assert mo0 not in {o["mo_id"] for o in listed}  # the replica, paused behind
    pg_pair.sql("replica", "SELECT pg_wal_replay_resume()")
    deadline = time.monotonic() + 20
    while mo0 not in {o["mo_id"] for o in
                      api.get("/v1/manager-orders", params={"limit": 50}).json()["data"]}:
        assert time.monotonic() < deadline, "the replica never caught up"
        time.sleep(0.1)

    # 2. promotion in the middle of a fan-out
    relay = _start_relay(procs, env)
    worker = _start_consumer(procs, "dispatch", env, 8)
    r1 = api.post("/v1/manager-orders", json={**ORDER, "symbol": "AAPL"})
    assert r1.status_code == 201, r1.text
    mo_ids = [mo0, r1.json()["mo_id"]]
    deadline = time.monotonic() + 60
    while int(rcv.get("/_admin/state", params={"summary": 1})
              .json()["totals"]["arrivals"]) < n // 3:
        assert time.monotonic() < deadline, "deliveries did not start"
        time.sleep(0.02)
    fault_at = time.time()
    pg_pair.pg_ctl("primary", "-m", "immediate", "-w", "stop")
    pg_pair.pg_ctl("replica", "-w", "promote")
    switch_s = time.time() - fault_at

    r2 = _post_until_accepted(api, {**ORDER, "symbol": "MSFT"}, key="after-switch")
    mo_ids.append(r2.json()["mo_id"])
    children = _settle(api, mo_ids, timeout=120, alive=[relay, worker, api_proc],
                       procs=procs)
    assert len(children) == 2 * n + n  # IBM, AAPL and MSFT each to every follower
    state = rcv.get("/_admin/state").json()
    assert state["totals"]["rejected"] == {}
    assert set(state["ids"]) == {c["fo_id"] for c in children}
    assert {c["state"] for c in children} == {"ack"}
    figures = fault_figures(rcv, children, fault_at, tmp_path / "receiver.jsonl")
    assert figures["lost"] == 0, figures
    # a webhook sent while the primary died has its answer recorded after the promotion
    # (the worker still holds the lease), so nothing is sent twice
    assert figures["duplicated"] == 0, figures
    assert pg_pair.sql("replica", "SELECT pg_is_in_recovery()") == "f"
    procs.stop_all()
    _report("postgres_promotion", {"followers": n, "switch_s": round(switch_s, 2), **figures,
                                   "total_s": round(time.monotonic() - started, 1)})
