"""How long the web app's order page takes for an order with N children (default 10,000).

    .venv/bin/python bench/web_order_page.py            # N = 10,000, 20 requests
    .venv/bin/python bench/web_order_page.py --n 1000 --runs 5

Seeds N followers (rows written directly; no secrets are needed since nothing is sent),
submits one manager order (N children), signs in through the app's own code flow and times
GET /app/orders/{id} (the first page of children), the children fragment htmx refreshes
and the DAG fragment, in process over ASGI (no network). Prints median and P95 in ms and
writes bench/results/web_order_page.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from vanta.application.clock import utcnow
from vanta.application.followers import parse_registration
from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.domain.ids import new_id
from vanta.entrypoints.api.app import create_app

TENANT, VAULT = "tnt_bench", "V_BENCH"


async def seed(c: object, n: int) -> str:
    await create_tenant(c.uow(), tenant_id=TENANT, name="Bench")  # type: ignore[attr-defined]
    await grant_plan(c.uow(), tenant_id=TENANT, plan_id="institutional",  # type: ignore[attr-defined]
                     actor="bench")
    await create_vault(c.uow(), tenant_id=TENANT, vault_id=VAULT, label="Bench")  # type: ignore[attr-defined]
    now = utcnow()
    fields = parse_registration({"label": "f", "scale": "0.5",
                                 "webhook": {"url": "https://f.example/h"}})
    fields.pop("sync")
    fields.pop("bridge")
    async with c.uow() as uow:  # type: ignore[attr-defined]
        for i in range(n):
            await uow.followers.add({**fields, "label": f"f{i:05d}", "follower_id": new_id(),
                                     "tenant_id": TENANT, "vault_id": VAULT,
                                     "hmac_key_ref": "none", "bridged_brokers": None,
                                     "paused_reason": None, "created_at": now,
                                     "updated_at": now})
        await uow.commit()
    order = parse_order_input({"id": "big", "vault_id": VAULT, "symbol": "AAPL",
                               "side": "buy", "qty": "100", "ref_price": "10"})
    done = await submit_manager_order(c.uow(), tenant_id=TENANT, order=order,  # type: ignore[attr-defined]
                                      source="api", actor="bench")
    return done.order.mo_id


async def timed(client: httpx.AsyncClient, path: str, runs: int) -> dict[str, float]:
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        r = await client.get(path)
        ms.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    ms.sort()
    return {"median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[max(0, int(0.95 * len(ms)) - 1)], 1)}


async def main(n: int, runs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        c = build(Settings(data_dir=Path(tmp), profile="test", rate_limit_per_minute=10**9,
                           rate_limit_burst=10**9))
        await c.migrate()
        mo_id = await seed(c, n)
        app = create_app(c, run_dispatcher=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://bench") as client:
            r = await client.get(f"/app/login?tenant={TENANT}&as_role=auditor",
                                 follow_redirects=True)
            assert r.status_code == 200
            out = {"children": n, "runs": runs,
                   "order_page": await timed(client, f"/app/orders/{mo_id}", runs),
                   "children_fragment": await timed(client, f"/app/orders/{mo_id}/children",
                                                    runs),
                   "dag_fragment": await timed(client, f"/app/orders/{mo_id}/dag",
                                               max(3, runs // 4))}
        await c.close()
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    result = asyncio.run(main(a.n, a.runs))
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "web_order_page.json").write_text(json.dumps(result, indent=2))
