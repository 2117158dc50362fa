"""A 3-node JetStream cluster loses the node that leads the dispatch stream in the middle of
a 2,000-follower fan-out (two dispatch workers, one relay, all given the three URLs). Every
child must reach the verifying receiver exactly once, none dead-lettered, and the stall is
reported. Slow: marked ``ha`` (``pytest -m "not ha"`` skips it)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.ha_helpers import NatsCluster, fault_figures, register_secrets, seed_followers
from tests.e2e.test_delivery_faults import VANTA, Processes, _report, _wait_for_file
from tests.e2e.test_production_profile import (
    MASTER_KEY,
    _prod_env,
    _settle,
    _start_consumer,
    _start_receiver,
    _start_relay,
)
from tests.http_helpers import add_idempotency_key_sync
from tests.pg import temp_database

pytestmark = [pytest.mark.e2e, pytest.mark.ha]

TENANT, VAULT, STREAM = "tnt_ha", "V_HA", "VANTA_MIRROR"


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats")
    cluster.root.mkdir()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


async def _platform(data_dir: Path, db_url: str) -> str:
    """Schema, tenant on the Institutional plan, vault; a bearer token."""
    from vanta.application.principal import ALL_SCOPES
    from vanta.application.seed import create_tenant, create_vault
    from vanta.application.tenancy import grant_plan
    from vanta.bootstrap import build
    from vanta.config import Settings
    c = build(Settings(data_dir=data_dir, database_url=db_url, master_key=MASTER_KEY))
    try:
        await c.migrate()
        await create_tenant(c.uow(), tenant_id=TENANT, name="HA")
        await grant_plan(c.uow(), tenant_id=TENANT, plan_id="institutional", actor="test")
        await create_vault(c.uow(), tenant_id=TENANT, vault_id=VAULT, label="HA")
        return c.issuer.issue("ha", TENANT, ALL_SCOPES, roles=["owner"], ttl_seconds=3600)
    finally:
        await c.close()


def test_stream_leader_node_killed_mid_fan_out(
    procs: Processes, tmp_path: Path, postgres_url: str, nats_cluster: NatsCluster,
) -> None:
    from vanta.config import Settings
    started = time.monotonic()
    n = 2000
    with temp_database(postgres_url) as db_url:
        env = _prod_env(tmp_path, db_url, nats_cluster.url)
        data_dir = Path(env["VANTA_DATA_DIR"])
        token = asyncio.run(_platform(data_dir, db_url))
        rcv = _start_receiver(procs, tmp_path, env, "--fail-rate", "0")
        hooks = f"{str(rcv.base_url).rstrip('/')}/hooks"
        secrets = asyncio.run(seed_followers(
            Settings(data_dir=data_dir, database_url=db_url, master_key=MASTER_KEY),
            TENANT, VAULT, n, hooks))
        register_secrets(rcv, secrets)
        port_file = tmp_path / "api.port"
        api_proc = procs.start("api", [*VANTA, "serve", "--no-dispatcher", "--port", "0",
                                       "--port-file", str(port_file)], env)
        api = httpx.Client(base_url=f"http://127.0.0.1:{_wait_for_file(port_file, api_proc, 60)}",
                           headers={"Authorization": f"Bearer {token}"}, timeout=60,
                           event_hooks={"request": [add_idempotency_key_sync]})
        relay = _start_relay(procs, env)
        workers = [_start_consumer(procs, f"dispatch{i}", env, 16) for i in range(2)]
        setup_s = time.monotonic() - started

        r = api.post("/v1/manager-orders", json={"vault_id": VAULT, "symbol": "AAPL",
                                                 "side": "buy", "qty": 5, "ref_price": 100})
        assert r.status_code == 201, r.text
        mo_id = r.json()["mo_id"]
        info = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the stream exists once the relay connected
            arrivals = int(rcv.get("/_admin/state", params={"summary": 1})
                           .json()["totals"]["arrivals"])
            if arrivals >= n // 5:
                break
            time.sleep(0.02)
        info = nats_cluster.stream_info(STREAM)
        assert info.config.num_replicas == 3  # three copies: the cluster has three nodes
        leader = nats_cluster.node(info.cluster.leader)
        assert arrivals < n, "the fan-out ended before the fault"
        fault_at = time.time()
        nats_cluster.kill(leader)

        children = _settle(api, [mo_id], timeout=120, alive=[relay, *workers, api_proc],
                           procs=procs)
        recovered_s = time.time() - fault_at
        assert len(children) == n
        assert Counter(c["state"] for c in children) == {"ack": n}  # none dead-lettered
        state = rcv.get("/_admin/state").json()
        assert state["totals"]["rejected"] == {}  # every signature verified
        assert set(state["ids"]) == {c["fo_id"] for c in children}
        figures = fault_figures(rcv, children, fault_at, tmp_path / "receiver.jsonl")
        assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
        new_info = nats_cluster.stream_info(STREAM)
        assert new_info.cluster.leader != leader.name
        procs.stop_all()
        _report("nats_leader_killed", {
            "followers": n, "arrivals_at_fault": arrivals, "killed": leader.name,
            "new_leader": new_info.cluster.leader, **figures,
            "settled_after_fault_s": round(recovered_s, 2), "setup_s": round(setup_s, 1),
            "total_s": round(time.monotonic() - started, 1)})
