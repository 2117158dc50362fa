"""Bridged followers: child orders placed through the follower's own broker account.

The child order id is the broker's client order id, so a retried or replayed submit can
never place a second order. Adapters only translate and report; fills are applied here,
through the child's state table, de-duplicated by the venue's trade id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from vanta.application.alerts import raise_alert
from vanta.application.clock import Clock, utcnow
from vanta.application.leg_runner import advance_legs
from vanta.application.observability import child_moved, fill_recorded
from vanta.application.ports.brokers import (
    BrokerFactory,
    BrokerGateway,
    BrokerGateways,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    OrderNotFound,
    OrderReport,
    OrderStatus,
)
from vanta.application.ports.delivery import SendResult
from vanta.application.ports.journal import NO_JOURNAL, Journal
from vanta.application.ports.metrics import NO_METRICS, Metrics
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_orders import ChildOrderRecord, ManagerOrderRecord
from vanta.application.ports.uow import UowFactory
from vanta.domain.alerts import AlertKind
from vanta.domain.errors import ValidationFailed
from vanta.domain.orders import CHILD_ORDER_TABLE, ChildOrderState

log = logging.getLogger("vanta.brokers")

BROKERS = ("paper", "alpaca", "tradier", "coinbase", "binance", "kraken")
CREDENTIAL_FIELDS: Mapping[str, tuple[set[str], set[str]]] = {
    # broker: (required, optional)
    "paper": (set(), {"cash", "url"}),  # url: a `vanta paper venue`, else in-process
    "alpaca": ({"key_id", "secret_key"}, {"base_url"}),
    "tradier": ({"access_token", "account_id"}, {"base_url"}),
    "coinbase": ({"api_key", "api_secret"}, {"api_url"}),
    "binance": ({"api_key", "api_secret"}, set()),
    "kraken": ({"api_key", "api_secret"}, set()),
}
# credential fields that name a URL the platform will connect to
BRIDGE_URL_FIELDS = frozenset({"url", "base_url", "api_url"})


def parse_bridge(raw: object) -> tuple[str, dict[str, str]]:
    """``{"broker": "alpaca", "credentials": {...}}`` → (broker, credentials)."""
    if not isinstance(raw, Mapping) or set(raw) - {"broker", "credentials"}:
        raise ValidationFailed("bridged must be {\"broker\": ..., \"credentials\": {...}}",
                               code="invalid_bridge", field="bridged")
    broker = raw.get("broker")
    if broker not in BROKERS:
        raise ValidationFailed(f"broker must be one of {', '.join(BROKERS)}",
                               code="unknown_broker", field="bridged.broker")
    creds = raw.get("credentials") or {}
    required, optional = CREDENTIAL_FIELDS[broker]
    for key in sorted(BRIDGE_URL_FIELDS):
        if isinstance(creds, Mapping) and key in creds:
            parts = urlsplit(str(creds[key]))
            if parts.scheme not in ("http", "https") or not parts.hostname or \
                    parts.username or parts.password:
                raise ValidationFailed(f"{key} must be an http(s) URL without credentials",
                                       code="invalid_bridge", field=f"bridged.credentials.{key}")
    if not isinstance(creds, Mapping) or not all(isinstance(v, str) for v in creds.values()):
        raise ValidationFailed("credentials must be an object of strings",
                               code="invalid_bridge", field="bridged.credentials")
    missing = sorted(required - set(creds))
    unknown = sorted(set(creds) - required - optional)
    if missing or unknown:
        raise ValidationFailed(f"credentials: missing {missing or '-'}, unknown {unknown or '-'}",
                               code="invalid_bridge", field="bridged.credentials")
    return str(broker), dict(creds)


def broker_order(child: ChildOrderRecord, order: ManagerOrderRecord) -> BrokerOrder:
    return BrokerOrder(client_order_id=child.fo_id, symbol=child.symbol,
                       side=child.side, qty=child.qty, tif=order.tif, limit_price=None)


class BrokerRegistry:
    """One gateway per follower account, built on first use from its stored credentials by
    ``factory`` (the composition root's: ``vanta.bootstrap.brokers.default_factory``)."""

    def __init__(self, secrets_get: Callable[[str], bytes], factory: BrokerFactory) -> None:
        self._secrets_get = secrets_get
        self._factory = factory
        self._gateways: dict[str, BrokerGateway] = {}

    def for_follower(self, follower: FollowerRecord) -> BrokerGateway:
        fid = follower.follower_id
        gw = self._gateways.get(fid)
        if gw is None:
            bridge = follower.bridged_brokers
            if bridge is None:
                raise ValueError(f"follower {fid} is not bridged to a broker")
            creds = json.loads(self._secrets_get(bridge["ref"]))
            gw = self._factory(bridge["broker"], creds, fid)
            self._gateways[fid] = gw
        return gw

    async def close(self) -> None:
        for gw in self._gateways.values():
            await gw.close()
        self._gateways.clear()


async def _venue_lost_order(uow_factory: UowFactory, child: ChildOrderRecord, now: Any,
                            journal: Journal) -> None:
    error = "the broker has no record of this accepted order"
    async with uow_factory() as uow:
        if await uow.child_orders.update(child.fo_id, expect_state="ack", state="failed",
                                         last_error=error, updated_at=now):
            child_moved(journal, child, "ack", "failed", error=error)
            await uow.audit.append(entity="follower_order", entity_id=child.fo_id,
                                   action="broker:failed", actor="confirmer",
                                   tenant_id=child.tenant_id, payload={"error": error})
            await raise_alert(uow, tenant_id=child.tenant_id, kind=AlertKind.BROKER_LOST_ORDER,
                              subject=child.follower_id, now=now,
                              detail={"fo_id": child.fo_id, "mo_id": child.mo_id,
                                      "follower_id": child.follower_id,
                                      "vault_id": child.vault_id, "error": error})
        await uow.commit()
    log.error("ALERT broker lost an accepted order", extra={"fo_id": child.fo_id,
                                                            "follower_id": child.follower_id})


def fill_progress(report: OrderReport) -> tuple[str | None, str | None]:
    """(next child state, error) implied by a broker report; None = still working."""
    if report.status is OrderStatus.FILLED:
        return "confirmed", None
    if report.is_terminal:
        if report.filled_qty > 0:
            return "confirmed", f"{report.status.value} after a partial fill"
        return "failed", f"{report.status.value}: {report.reason or 'no fill'}"
    return None, None


async def submit_to_broker(gateway: BrokerGateway, order: BrokerOrder,
                           price: Decimal | None, metrics: Metrics = NO_METRICS) -> SendResult:
    """One attempt at the venue, reported in the dispatcher's terms: accepted → 2xx,
    refused → terminal, unavailable → retry with the usual backoff."""
    set_price = getattr(gateway, "set_price", None)
    if set_price is not None and price is not None:
        set_price(order.symbol, price)  # the paper venue marks at the manager's price
    start = time.perf_counter()
    try:
        ack = await gateway.submit(order)
    except BrokerRejected as e:
        metrics.record_broker_submit(False)
        return SendResult(None, _ms(start), None, f"broker rejected: {e.reason}", refused=True)
    except BrokerUnavailable as e:
        metrics.record_broker_submit(False)
        return SendResult(None, _ms(start), None, f"broker unavailable: {e.reason}",
                          retry_after=None if e.retry_after is None else str(e.retry_after))
    metrics.record_broker_submit(True)
    return SendResult(200, _ms(start), ack.status.value, None, broker_ref=ack.broker_order_id)


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


async def confirm_fills(uow_factory: UowFactory, brokers: BrokerGateways, *,
                        clock: Clock = utcnow, limit: int = 200,
                        journal: Journal = NO_JOURNAL) -> int:
    """The confirmer: ask each venue about accepted orders, record new fills (once per trade
    id), track partial fills, and settle children whose order finished."""
    async with uow_factory() as uow:
        children = await uow.child_orders.awaiting_fills(limit)
        legged = set(await uow.legs.for_children(c.fo_id for c in children))
    settled = 0
    for child in children:
        async with uow_factory() as uow:
            follower = await uow.followers.get_unscoped(child.follower_id)
        if follower is None or not follower.bridged_brokers:
            continue
        if child.fo_id in legged:  # executed by its legs, each its own order at the venue
            settled += await advance_legs(uow_factory, brokers.for_follower(follower), child,
                                          clock=clock, journal=journal)
            continue
        try:
            report = await brokers.for_follower(follower).order_report(child.fo_id)
        except OrderNotFound:
            # The venue has no record of an order it accepted (its state was lost): nothing
            # will ever fill it. Say so loudly rather than wait forever.
            await _venue_lost_order(uow_factory, child, clock(), journal)
            continue
        except (BrokerUnavailable, BrokerRejected) as e:
            log.warning("order report unavailable", extra={"fo_id": child.fo_id,
                                                          "error": str(e)})
            continue
        now = clock()
        async with uow_factory() as uow:
            for f in report.fills:
                if await uow.fills.add_if_new({"trade_id": f.trade_id, "fo_id": child.fo_id,
                                               "qty": f.qty, "price": f.price, "ts": f.ts,
                                               "recorded_at": now}):
                    fill_recorded(journal, child, f.trade_id, f.qty, f.price, f.ts)
                    await uow.audit.append(
                        entity="follower_order", entity_id=child.fo_id, action="fill",
                        actor="confirmer", tenant_id=child.tenant_id,
                        payload={"trade_id": f.trade_id, "qty": str(f.qty),
                                 "price": str(f.price)})
            target, error = fill_progress(report)
            values: dict[str, Any] = {"filled_qty": report.filled_qty,
                                      "avg_fill_price": report.avg_price, "updated_at": now}
            if target is not None:
                CHILD_ORDER_TABLE.check(ChildOrderState.ACK, ChildOrderState(target))
                values.update(state=target, last_error=error)
            if await uow.child_orders.update(child.fo_id, expect_state="ack", **values) \
                    and target is not None:
                settled += 1
                child_moved(journal, child, "ack", target, error=error,
                            filled_qty=str(report.filled_qty))
                await uow.audit.append(entity="follower_order", entity_id=child.fo_id,
                                       action=f"broker:{target}", actor="confirmer",
                                       tenant_id=child.tenant_id,
                                       payload={"filled_qty": str(report.filled_qty),
                                                "avg_price": None if report.avg_price is None
                                                else str(report.avg_price), "error": error})
            await uow.commit()
    return settled
