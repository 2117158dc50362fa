"""``vanta demo``: the whole path on a throwaway database, over real HTTP, in seconds."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant, create_vault
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.devpeers import receiver as receiver_mod
from vanta.entrypoints.cli.serving import bind, serve

TENANT, VAULT = "tnt_demo", "V_CORE"
FOLLOWERS: list[dict[str, Any]] = [
    {"key": "ada", "label": "Ada", "scale": "0.20", "max_pos_usd": 2500, "mode": "capped",
     "plan": "pro"},
    {"key": "bo", "label": "Bo", "scale": "0.50"},
    {"key": "cy", "label": "Cy", "scale": "1", "max_pos_usd": 5000, "plan": "pro"},
    {"key": "dee", "label": "Dee", "scale": "0.75", "kill_switch": True},
    {"key": "eve", "label": "Eve", "scale": "0.10", "mode": "shadow"},
    {"key": "fay", "label": "Fay", "scale": "0.01"},
]
ORDERS: list[dict[str, Any]] = [
    {"symbol": "AAPL", "venue": "nasdaq", "side": "buy", "qty": 40, "ref_price": 190,
     "reason_vector": ["SEC Form 4 Insider Buy", "Options Skew (calls >> puts)"],
     "conviction": {"score": 0.87, "band": "A", "persona": "Apollo"}},
    {"symbol": "BTC-USD", "venue": "coinbase", "side": "buy", "qty": "0.25",
     "ref_price": 65000, "reason_vector": ["ETF inflows"]},
    {"symbol": "AAPL", "venue": "nasdaq", "side": "sell", "qty": 40, "ref_price": 195,
     "closes_position": True, "reason_vector": ["Take profit"]},
    {"symbol": "MSFT", "venue": "nasdaq", "side": "buy", "qty": 15, "ref_price": 420},
]
OPEN = {"pending", "sent", "retry"}


async def run_demo(*, orders: int = 3, console: Console | None = None,
                   timeout_s: float = 30.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vanta-demo-") as tmp:
        return await _run(Path(tmp), orders, console, timeout_s)


async def _run(tmp: Path, n_orders: int, console: Console | None,
               timeout_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    rcv = receiver_mod.Receiver()
    runner, rport = await receiver_mod.start(rcv)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    s = Settings(data_dir=tmp, api_port=port, dispatcher_poll_seconds=0.05,
                 webhook_allowlist=["127.0.0.1/32"],  # the demo receiver is local
                 rate_limit_per_minute=100_000, rate_limit_burst=1_000)
    c = build(s)
    await c.migrate()
    await create_tenant(c.uow(), tenant_id=TENANT, name="Demo Capital")
    await create_vault(c.uow(), tenant_id=TENANT, vault_id=VAULT, label="Core Growth")
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(c, sock, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 10)
    tok = c.issuer.issue("demo-owner", TENANT, ALL_SCOPES, roles=["owner"])
    api = f"http://127.0.0.1:{port}"
    names: dict[str, str] = {}
    try:
        async with httpx.AsyncClient(base_url=api, timeout=10,
                                     headers={"Authorization": f"Bearer {tok}"}) as http:
            for f in FOLLOWERS:
                spec = {k: v for k, v in f.items() if k != "key"}
                spec["webhook"] = {"url": f"http://127.0.0.1:{rport}/hooks/{f['key']}"}
                r = await http.post(f"/v1/vaults/{VAULT}/followers", json=spec,
                                    headers={"Idempotency-Key": f"demo-follower-{f['key']}"})
                r.raise_for_status()
                body = r.json()
                rcv.secrets[f["key"]] = body["webhook_secret"]
                names[body["follower_id"]] = f["label"]
            mo_ids = []
            for i in range(n_orders):
                o = {**ORDERS[i % len(ORDERS)], "vault_id": VAULT, "id": f"DEMO-{i + 1}"}
                r = await http.post("/v1/manager-orders", json=o,
                                    headers={"Idempotency-Key": f"demo-order-{i + 1}"})
                r.raise_for_status()
                mo_ids.append(r.json()["mo_id"])
                await _wait_settled(http, r.json()["mo_id"], timeout_s)
            children: list[dict[str, Any]] = []
            orders_out: list[dict[str, Any]] = []
            for mo in mo_ids:
                body = (await http.get(f"/v1/manager-orders/{mo}")).json()
                orders_out.append(body)
                children.extend(body["children"])
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)
        await runner.cleanup()
    return _report(children, orders_out, rcv, names, console, time.perf_counter() - started)


async def _wait_settled(http: httpx.AsyncClient, mo_id: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = (await http.get(f"/v1/manager-orders/{mo_id}")).json()
        if not any(ch["state"] in OPEN for ch in body["children"]):
            return
        await asyncio.sleep(0.05)


def _report(children: list[dict[str, Any]], orders: list[dict[str, Any]],
            rcv: receiver_mod.Receiver, names: dict[str, str], console: Console | None,
            elapsed: float) -> dict[str, Any]:
    by_mo = {o["mo_id"]: o for o in orders}
    rows, problems = [], []
    bad_sigs = [d for d in rcv.deliveries if not d.verified]
    for ch in children:
        got = rcv.applied.get(ch["fo_id"])
        verified = got is not None
        if ch["state"] == "ack" and not verified:
            problems.append(f"{ch['fo_id']} acked but not verified at the receiver")
        if ch["state"] in OPEN or ch["state"] in {"failed", "dlq"}:
            problems.append(f"{ch['fo_id']} ended in state {ch['state']}")
        if verified and str(got["qty"]) != ch["qty"]:
            problems.append(f"{ch['fo_id']} qty mismatch {got['qty']} != {ch['qty']}")
        mo = by_mo[ch["mo_id"]]
        rows.append({
            "follower": names.get(ch["follower_id"], ch["follower_id"]),
            "order": f"{mo['id']} {mo['side']} {mo['qty']} {mo['symbol']}",
            "mo_id": ch["mo_id"],
            "qty": ch["qty"], "state": ch["state"], "cap_applied": ch["cap_applied"],
            "skip_reason": ch["skip_reason"], "verified": verified,
        })
    if bad_sigs:
        problems.append(f"{len(bad_sigs)} deliveries failed signature verification")
    ok = not problems and any(r["verified"] for r in rows)
    if console is not None:
        settings = {f["label"]: f for f in FOLLOWERS}
        for mo in orders:
            price = f" @ {mo['ref_price']}" if mo["ref_price"] else ""
            t = Table(title=f"{mo['id']}: {mo['side']} {mo['qty']} {mo['symbol']}{price}",
                      title_justify="left")
            for col in ("follower", "settings", "qty", "state", "note", "signature"):
                t.add_column(col, no_wrap=True)
            for r in sorted((r for r in rows if r["mo_id"] == mo["mo_id"]),
                            key=lambda r: r["follower"]):
                f = settings.get(r["follower"], {})
                cfg = f"x{f.get('scale', '?')}" + (f" cap ${f['max_pos_usd']}"
                                                  if f.get("max_pos_usd") else "")
                note = r["skip_reason"] or ("cut to cap" if r["cap_applied"] else "")
                t.add_row(r["follower"], cfg, r["qty"], r["state"], note,
                          "[green]verified[/green]" if r["verified"] else "-")
            console.print(t)
        for p in problems:
            console.print(f"[red]problem:[/red] {p}")
        verdict = "[green]OK[/green]" if ok else "[red]FAILED[/red]"
        console.print(f"{verdict}: {sum(r['verified'] for r in rows)} deliveries verified, "
                      f"{len(rows)} child orders, {elapsed:.2f}s")
    return {"ok": ok, "problems": problems, "children": rows, "elapsed_s": round(elapsed, 3)}
