"""Venue accounts and the simulator's state as JSON.

The paper broker keeps its state in private attributes; this module is the only place that
reads or restores them (for the admin listing and for the state file), so a change to the
simulator's internals has one place to follow it here.
"""

from __future__ import annotations

import base64
import random
import struct
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from vanta.adapters.brokers.paper import PaperBroker, PaperOrder, PaperSettings, report_of
from vanta.application.clock import Clock
from vanta.application.ports.brokers import BrokerOrder, Fill, OrderReport, OrderStatus
from vanta.domain.orders import Side, TimeInForce

STATE_VERSION = 1


@dataclass
class Account:
    account_id: str
    broker: PaperBroker
    submits: Counter[str] = field(default_factory=Counter)
    fault_status: int | None = None  # injected: every account call answers this (not saved)


def account_seed(template_seed: int, account_id: str) -> int:
    return (template_seed ^ zlib.crc32(account_id.encode())) & 0x7FFFFFFF


# ------------------------------------------------------------- reading the simulator


def orders_of(broker: PaperBroker) -> dict[str, PaperOrder]:
    return broker._orders


def catch_up(broker: PaperBroker) -> bool:
    """Move the broker's market up to its clock; ``True`` when that changed its state."""
    ticks = broker._ticks
    broker._catch_up()
    return broker._ticks != ticks


def report(placed: PaperOrder) -> OrderReport:
    return report_of(placed)


# ------------------------------------------------------------------------- JSON


def plain(d: Decimal) -> str:
    """A Decimal as a plain string, exactly (no exponent, no float on the way)."""
    return format(d, "f")


def _decs(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {k: plain(v) for k, v in values.items()}


def _undecs(values: Mapping[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in values.items()}


def _td(value: timedelta | None) -> int | None:
    return None if value is None else value // timedelta(microseconds=1)


def _untd(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(microseconds=value)


def _dump_rng(rng: random.Random) -> dict[str, Any]:
    version, internal, gauss = rng.getstate()
    packed = struct.pack(f"<{len(internal)}I", *internal)
    return {"version": version, "state": base64.b64encode(packed).decode(), "gauss": gauss}


def _load_rng(data: Mapping[str, Any]) -> random.Random:
    packed = base64.b64decode(data["state"])
    internal = struct.unpack(f"<{len(packed) // 4}I", packed)
    rng = random.Random()
    rng.setstate((data["version"], internal, data["gauss"]))
    return rng


def _dump_settings(s: PaperSettings) -> dict[str, Any]:
    return {"prices": _decs(s.prices), "cash": plain(s.cash), "positions": _decs(s.positions),
            "seed": s.seed, "volatility": plain(s.volatility), "tick_us": _td(s.tick),
            "latency_us": _td(s.latency), "fill_steps": list(s.fill_steps),
            "reject_probability": plain(s.reject_probability), "fee_rate": plain(s.fee_rate),
            "price_increment": plain(s.price_increment), "lot_steps": _decs(s.lot_steps),
            "allow_short": s.allow_short}


def _load_settings(d: Mapping[str, Any]) -> PaperSettings:
    lo, hi = d["fill_steps"]
    return PaperSettings(
        prices=_undecs(d["prices"]), cash=Decimal(d["cash"]), positions=_undecs(d["positions"]),
        seed=int(d["seed"]), volatility=Decimal(d["volatility"]), tick=_untd(d["tick_us"]),
        latency=_untd(d["latency_us"]) or timedelta(0), fill_steps=(int(lo), int(hi)),
        reject_probability=Decimal(d["reject_probability"]), fee_rate=Decimal(d["fee_rate"]),
        price_increment=Decimal(d["price_increment"]), lot_steps=_undecs(d["lot_steps"]),
        allow_short=bool(d["allow_short"]))


def _dump_order(o: PaperOrder) -> dict[str, Any]:
    r = o.request
    return {"request": {"client_order_id": r.client_order_id, "symbol": r.symbol,
                        "side": r.side.value, "qty": plain(r.qty), "tif": r.tif.value,
                        "limit_price": None if r.limit_price is None else plain(r.limit_price)},
            "broker_order_id": o.broker_order_id, "submitted_at": o.submitted_at.isoformat(),
            "parts": [plain(p) for p in o.parts], "reject_on_first_tick": o.reject_on_first_tick,
            "status": o.status.value, "filled": plain(o.filled), "notional": plain(o.notional),
            "fills": [{"trade_id": f.trade_id, "qty": plain(f.qty), "price": plain(f.price),
                       "ts": f.ts.isoformat()} for f in o.fills],
            "reason": o.reason}


def _load_order(d: Mapping[str, Any]) -> PaperOrder:
    r = d["request"]
    request = BrokerOrder(client_order_id=r["client_order_id"], symbol=r["symbol"],
                          side=Side(r["side"]), qty=Decimal(r["qty"]), tif=TimeInForce(r["tif"]),
                          limit_price=None if r["limit_price"] is None
                          else Decimal(r["limit_price"]))
    return PaperOrder(request=request, broker_order_id=d["broker_order_id"],
                      submitted_at=datetime.fromisoformat(d["submitted_at"]),
                      parts=[Decimal(p) for p in d["parts"]],
                      reject_on_first_tick=bool(d["reject_on_first_tick"]),
                      status=OrderStatus(d["status"]), filled=Decimal(d["filled"]),
                      notional=Decimal(d["notional"]),
                      fills=[Fill(trade_id=f["trade_id"], qty=Decimal(f["qty"]),
                                  price=Decimal(f["price"]),
                                  ts=datetime.fromisoformat(f["ts"]))
                             for f in d["fills"]],
                      reason=d["reason"])


def dump_account(account: Account) -> dict[str, Any]:
    b = account.broker
    return {"account_id": account.account_id, "settings": _dump_settings(b.settings),
            "submits": dict(account.submits),
            "state": {"prices": _decs(b._prices), "positions": _decs(b._positions),
                      "cash": plain(b._cash), "order_seq": b._order_seq,
                      "trade_seq": b._trade_seq, "epoch": b._epoch.isoformat(),
                      "ticks": b._ticks, "clock_ticks": b._clock_ticks,
                      "submit_attempts": b.submit_attempts, "rng": _dump_rng(b._rng),
                      "orders": [_dump_order(o) for o in b._orders.values()]}}


def load_account(data: Mapping[str, Any], clock: Clock) -> Account:
    b = PaperBroker(_load_settings(data["settings"]), clock=clock)
    s = data["state"]
    b._prices = _undecs(s["prices"])
    b._positions = _undecs(s["positions"])
    b._cash = Decimal(s["cash"])
    b._order_seq = int(s["order_seq"])
    b._trade_seq = int(s["trade_seq"])
    b._epoch = datetime.fromisoformat(s["epoch"])
    b._ticks = int(s["ticks"])
    b._clock_ticks = int(s["clock_ticks"])
    b.submit_attempts = int(s["submit_attempts"])
    b._rng = _load_rng(s["rng"])
    orders = [_load_order(o) for o in s["orders"]]
    b._orders = {o.request.client_order_id: o for o in orders}
    return Account(data["account_id"], b, Counter(data.get("submits") or {}))
