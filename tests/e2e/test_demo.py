"""`vanta demo` runs the whole path and only reports success when every delivery verified."""

from __future__ import annotations

from vanta.devpeers import receiver as receiver_mod
from vanta.entrypoints.cli.demo import _report, run_demo


async def test_demo_mirrors_and_verifies_every_delivery() -> None:
    report = await run_demo(orders=3)
    assert report["ok"], report["problems"]
    rows = {(r["order"].split()[0], r["follower"]): r for r in report["children"]}
    assert rows[("DEMO-1", "Ada")]["qty"] == "8"
    assert rows[("DEMO-1", "Cy")]["qty"] == "26" and rows[("DEMO-1", "Cy")]["cap_applied"]
    assert rows[("DEMO-1", "Dee")]["skip_reason"] == "kill_switch"
    assert rows[("DEMO-1", "Eve")]["state"] == "shadow"
    assert rows[("DEMO-2", "Ada")]["qty"] == "0.03846"  # 2500 / 65000 floored to 0.00001
    assert rows[("DEMO-3", "Cy")]["qty"] == "26"  # closing sells the whole position
    assert all(r["verified"] for r in report["children"] if r["state"] == "ack")


def test_report_fails_when_an_ack_was_not_verified() -> None:
    child = {"fo_id": "x", "mo_id": "m", "follower_id": "f", "qty": "1", "state": "ack",
             "cap_applied": False, "skip_reason": None}
    order = {"mo_id": "m", "id": "M", "side": "buy", "qty": "1", "symbol": "X"}
    report = _report([child], [order], receiver_mod.Receiver(), {}, None, 0.1)
    assert not report["ok"] and "not verified" in report["problems"][0]
