"""Cross-rail execution end to end, as real processes on 127.0.0.1: a crypto vault's order
reaches a follower funded in USD at a ``vanta paper venue`` whose only BTC book is BTC-USDC.
Its child is planned as a USD→USDC conversion (topping up to the stablecoin buffer) and the
BTC-USDC order; the dispatcher sends the conversion, the confirmer sends the asset leg once
the conversion filled, and the account ends holding the BTC and exactly the buffer in USDC.
(The webhook side, legs in the signed body, is covered over the fakes in
``tests/application/test_crossrail_flow.py``.)"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import Processes
from tests.e2e.test_bridged_sigkill import (
    VANTA,
    _env,
    _run,
    _start_platform,
    _start_venue,
    _venue_url,
)
from tests.e2e.test_reconcile_paper import _positions, _wait_states

pytestmark = pytest.mark.e2e

USDC_ONLY = {"maker_bps": "0", "taker_bps": "0", "spread_bps": "0", "conversion_bps": "0",
             "min_order_usd": "1", "latency_ms": 50, "pairs": ["BTC-USDC", "USDC-USD"]}


def test_a_usd_funded_follower_converts_then_buys(procs: Processes, tmp_path: Path) -> None:
    env = _env(tmp_path)
    venue_proc, port_file = _start_venue(procs, tmp_path, "venue", env, "--tick-ms", "20",
                                         "--fill-steps", "1,1", "--volatility", "0")
    venue_url = _venue_url(venue_proc, port_file)
    venue = httpx.Client(base_url=venue_url, timeout=30)
    http = _start_platform(procs, tmp_path, env)
    admin = {"Authorization": "Bearer " + _run(
        [*VANTA, "token", "--tenant", "tnt_b", "--scope", "platform:admin"], env).strip()}
    for path, body, headers in (
            ("/v1/instruments/default/BTC-USD", {"lot_step": "0.00001", "min_qty": "0.00001"},
             admin),
            ("/v1/venues/paper", USDC_ONLY, admin),
            ("/v1/vaults/V1/stablecoin-buffer", {"amount": "1000"}, {})):
        r = http.put(path, json=body, headers=headers)
        assert r.status_code == 200, r.text
    r = http.post("/v1/vaults/V1/followers", json={
        "label": "usd", "scale": "0.5",
        "bridged": {"broker": "paper", "credentials": {"url": venue_url, "cash": "50000"}}})
    assert r.status_code == 201, r.text
    account = r.json()["follower_id"]
    procs.start("dispatch", [*VANTA, "dispatch", "--no-until-idle"], env)

    r = http.post("/v1/manager-orders", json={"id": "C1", "vault_id": "V1", "symbol": "BTC-USD",
                                              "side": "buy", "qty": "1", "ref_price": "40000"})
    assert r.status_code == 201, r.text
    [child] = http.get(r.json()["links"]["children"]).json()["data"]
    legs = http.get(f"/v1/follower-orders/{child['fo_id']}/legs").json()["data"]
    assert [(g["kind"], g["pair"], g["amount"]) for g in legs] == [
        ("convert", "USDC-USD", "21000"), ("trade", "BTC-USDC", "0.5")]
    _wait_states(http, {child["fo_id"]}, "confirmed")
    legs = http.get(f"/v1/follower-orders/{child['fo_id']}/legs").json()["data"]
    assert [(g["state"], g["filled"]) for g in legs] == [("filled", "21000"),
                                                         ("filled", "0.5")]
    assert _positions(venue, account) == {"BTC-USDC": Decimal("0.5"),
                                          "USDC-USD": Decimal(1000)}
