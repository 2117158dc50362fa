"""Export and verify one manager order's replay bundle, and read its DAG, for N followers
on the embedded profile (SQLite, local object store).

    .venv/bin/python bench/replay_bundle.py               # N = 100 / 1,000
    .venv/bin/python bench/replay_bundle.py --n 1000      # one size

Prints, per N, the wall time of building the DAG, building and signing the bundle, storing
it, and verifying it offline (signature, files, audit hashes, every child recomputed), and
the bundle's size. Nothing is delivered: the children stay pending.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from vanta.adapters.objectstore.local import LocalObjectStore
from vanta.application.clock import utcnow
from vanta.application.dag import order_dag
from vanta.application.followers import parse_registration
from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.application.replay_bundle import build_bundle, store_bundle
from vanta.application.replay_verify import verify_bundle
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.bootstrap.signing import build_verifier
from vanta.config import Settings
from vanta.domain.ids import new_id
from vanta.entrypoints.code_version import code_version

TENANT, VAULT = "tnt_bench", "V_BENCH"


async def run(n: int, tmp: Path) -> dict[str, float]:
    c = build(Settings(data_dir=tmp, profile="test"))
    await c.migrate()
    await create_tenant(c.uow(), tenant_id=TENANT, name="bench")
    await grant_plan(c.uow(), tenant_id=TENANT, plan_id="institutional", actor="bench")
    await create_vault(c.uow(), tenant_id=TENANT, vault_id=VAULT, label="bench")
    now = utcnow()
    async with c.uow() as uow:
        for i in range(n):
            fields = parse_registration({"label": f"f{i}", "scale": str(1 + i % 7),
                                         "webhook": {"url": f"https://f{i}.example/h"}})
            fields.pop("sync")
            fields.pop("bridge")
            await uow.followers.add({"follower_id": new_id(), "tenant_id": TENANT,
                                     "vault_id": VAULT, **fields, "hmac_key_ref": None,
                                     "bridged_brokers": None, "paused_reason": None,
                                     "created_at": now, "updated_at": now})
        await uow.commit()
    order = parse_order_input({"id": "B-1", "vault_id": VAULT, "symbol": "AAPL", "side": "buy",
                               "qty": 1000, "ref_price": 190})
    mo_id = (await submit_manager_order(c.uow(), tenant_id=TENANT, order=order, source="api",
                                        actor="bench")).order.mo_id
    assert c.signer is not None
    c.signer.public_key()  # provision the key outside the timings
    t0 = time.perf_counter()
    dag = (await order_dag(c.uow(readonly=True), TENANT, mo_id)).dag
    t1 = time.perf_counter()
    bundle = await build_bundle(c.uow(readonly=True), TENANT, mo_id, signer=c.signer,
                                code_version=code_version())
    t2 = time.perf_counter()
    await store_bundle(LocalObjectStore(tmp / "objects"), bundle)
    t3 = time.perf_counter()
    report = verify_bundle(bundle.data, build_verifier(), c.signer.public_key())
    t4 = time.perf_counter()
    assert report.ok and report.children == n, report.problems
    await c.close()
    return {"n": n, "dag_nodes": len(dag.nodes), "dag_s": t1 - t0, "export_s": t2 - t1,
            "store_s": t3 - t2, "verify_s": t4 - t3, "bundle_bytes": len(bundle.data)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, action="append")
    for n in ap.parse_args().n or [100, 1000]:
        with tempfile.TemporaryDirectory() as tmp:
            r = asyncio.run(run(n, Path(tmp)))
        print(f"N={r['n']:>6}  dag {r['dag_s']:.2f}s ({r['dag_nodes']} nodes)  "
              f"export {r['export_s']:.2f}s  store {r['store_s']:.3f}s  "
              f"verify {r['verify_s']:.2f}s  bundle {r['bundle_bytes'] / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
