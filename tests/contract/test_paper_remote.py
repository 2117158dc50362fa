"""The paper venue over HTTP: RemotePaperBroker against a PaperVenue served on 127.0.0.1.

The shared broker contract (tests/contract/test_broker_contract.py) is collected again here
with a ``venue`` fixture of this module's own: the gateway under test is the HTTP adapter, the
venue an aiohttp test server wrapping the simulator, so every expectation (idempotent submit,
partial fills with stable trade ids, positions, NAV, refusals, outages, cancels) goes through
the wire format, the problem+json mapping and back. Outages are injected at the HTTP layer (the
venue answers the test's status), the rest through the simulator behind the server. Only the
credential tests are left out: the venue has no credentials.

The tests after that cover what is specific to the venue: persistence across a restart, the
admin listing, problem+json details, timeouts and the client's error mapping.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from tests.contract import test_broker_contract as contract
from tests.contract.harness import CASH, PARTS, Harness, closed_port
from vanta.adapters.brokers.paper import PaperBroker, PaperSettings
from vanta.adapters.brokers.paper_remote import RemotePaperBroker
from vanta.application.bridged import parse_bridge
from vanta.application.ports.brokers import (
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    OrderNotFound,
    OrderReport,
    OrderStatus,
)
from vanta.bootstrap.brokers import default_factory
from vanta.devpeers.paper_venue import PaperVenue
from vanta.domain.orders import Side, TimeInForce

ACCOUNT = "acct-1"
# The contract tests that need credentials; the venue has none.
NOT_APPLICABLE = {"test_refused_credentials_raise_auth_failed",
                  "test_credentials_never_reach_logs_reprs_or_errors"}


def _template(**overrides: Any) -> PaperSettings:
    settings: dict[str, Any] = dict(prices={"AAPL": Decimal("190.00")}, cash=CASH, seed=7,
                                    volatility=Decimal(0), tick=None,
                                    fill_steps=(PARTS, PARTS))
    settings.update(overrides)
    return PaperSettings(**settings)


class Served:
    """A PaperVenue on an aiohttp test server at 127.0.0.1 (port 0 unless given)."""

    def __init__(self, venue: PaperVenue, port: int = 0) -> None:
        self.venue = venue
        self.server = TestServer(venue.app(), host="127.0.0.1", port=port)

    async def __aenter__(self) -> Served:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port


@dataclass
class RemoteHarness(Harness):
    served: Served | None = None
    account_id: str = ACCOUNT

    def set_outage(self, status: int | None) -> None:
        # the venue itself answers 503/429/500, so the client's mapping is what is tested
        assert self.served is not None
        self.served.venue.set_fault(self.account_id, status)


@pytest.fixture
async def venue() -> AsyncIterator[Harness]:
    async with Served(PaperVenue(_template())) as served:
        # seed 7, as the in-process paper harness: the contract expects equal parts
        account, _ = served.venue.open_account(ACCOUNT, seed=7)
        harness = RemoteHarness(
            "paper-remote", RemotePaperBroker(served.url, ACCOUNT, timeout=5), "AAPL",
            Decimal(9), Decimal("190.00"), Decimal("191.00"),
            lambda: RemotePaperBroker(f"http://127.0.0.1:{closed_port()}", ACCOUNT,
                                      timeout=2),
            None, paper=account.broker, served=served)
        try:
            yield harness
        finally:
            await harness.close()


# The shared contract, collected again against the fixture above.
for _name in dir(contract):
    if _name.startswith("test_") and _name not in NOT_APPLICABLE:
        globals()[_name] = getattr(contract, _name)


# ------------------------------------------------------------------- venue specifics


def _cid() -> str:
    return str(uuid.uuid4())


def _order(cid: str | None = None, *, qty: str = "9", side: Side = Side.BUY,
           symbol: str = "AAPL", limit: str | None = None) -> BrokerOrder:
    return BrokerOrder(client_order_id=cid or _cid(), symbol=symbol, side=side,
                       qty=Decimal(qty), tif=TimeInForce.GTC,
                       limit_price=None if limit is None else Decimal(limit))


async def _with_adapter(url: str, work: Callable[[RemotePaperBroker], Awaitable[Any]],
                        account: str = ACCOUNT, **kw: Any) -> Any:
    broker = RemotePaperBroker(url, account, **{"timeout": 5, **kw})
    try:
        return await work(broker)
    finally:
        await broker.close()


async def _snapshot(broker: RemotePaperBroker, cids: list[str]) -> dict[str, Any]:
    return {"reports": [await broker.order_report(c) for c in cids],
            "positions": await broker.positions(), "nav": await broker.account_nav()}


def _untimed(report: OrderReport) -> tuple[Any, ...]:
    return (report.broker_order_id, report.status, report.filled_qty, report.avg_price,
            [(f.trade_id, f.qty, f.price) for f in report.fills])


async def test_the_venue_keeps_its_state_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "venue.jsonl"
    template = _template(volatility=Decimal("0.01"), fill_steps=(2, 3))
    cids = [_cid(), _cid()]
    async with Served(PaperVenue(template, state_file=state)) as served:
        broker = RemotePaperBroker(served.url, ACCOUNT, timeout=5, cash="250000")
        await broker.submit(_order(cids[0]))
        served.venue.broker(ACCOUNT).step()
        await broker.submit(_order(cids[1], qty="4"))
        served.venue.broker(ACCOUNT).step()
        before = await _snapshot(broker, cids)
        acks = [await broker.submit(_order(c, qty=q)) for c, q in zip(cids, "94", strict=True)]
        listing = served.venue.listing()
        await broker.close()
    # stopped (and saved); the original moves on by two ticks, the restored one must match
    served.venue.broker(ACCOUNT).step(2)
    expected = [await served.venue.broker(ACCOUNT).order_report(c) for c in cids]
    expected_cash = served.venue.broker(ACCOUNT).cash
    assert before["reports"][0].filled_qty > 0 and before["reports"][0].fills

    restored = PaperVenue(template, state_file=state)  # a new process, as far as it can tell
    async with Served(restored) as served:
        async def check(broker: RemotePaperBroker) -> None:
            assert await _snapshot(broker, cids) == before
            # the same random generator, clock and books: the market moves on identically
            restored.broker(ACCOUNT).step(2)
            assert [_untimed(await broker.order_report(c)) for c in cids] == \
                [_untimed(r) for r in expected]  # step() stamps fills with the wall clock
            assert restored.broker(ACCOUNT).cash == expected_cash
            again = await broker.submit(_order(cids[0]))  # still the same order
            assert (again.broker_order_id, again.submitted_at) == \
                (acks[0].broker_order_id, acks[0].submitted_at)
            new = await broker.submit(_order(qty="1"))  # numbering continues, no clash
            assert new.broker_order_id not in {a.broker_order_id for a in acks}
        await _with_adapter(served.url, check)
    by_cid = restored.listing()["by_client_order_id"]
    assert by_cid[cids[0]]["submits"] == 3
    assert by_cid[cids[1]]["submits"] == listing["by_client_order_id"][cids[1]]["submits"]


async def test_a_state_line_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "venue.jsonl"
    cid = _cid()
    async with Served(PaperVenue(_template(), state_file=state)) as served:
        await _with_adapter(served.url, lambda b: b.submit(_order(cid)))
    text = state.read_text()
    last = text.splitlines()[-1]
    state.write_text(text + last[: len(last) // 2])  # a write the crash interrupted
    restored = PaperVenue(_template(), state_file=state)
    assert restored.broker(ACCOUNT).order_count(cid) == 1
    assert state.read_text().count("\n") == 1  # compacted on start: one line per account
    state.write_text("not json\n" + text)
    with pytest.raises(ValueError, match="not a JSON line"):
        PaperVenue(_template(), state_file=state)


async def test_the_state_file_is_compacted_as_it_grows(tmp_path: Path) -> None:
    state = tmp_path / "venue.jsonl"
    venue = PaperVenue(_template(), state_file=state, compact_slack=10)
    longest = 0
    async with Served(venue) as served:
        async def churn(broker: RemotePaperBroker) -> None:
            nonlocal longest
            for _ in range(40):
                await broker.submit(_order(qty="1"))
                venue.broker(ACCOUNT).step()
                await broker.positions()
                longest = max(longest, len(state.read_text().splitlines()))
        await _with_adapter(served.url, churn)
    assert longest <= 4 * 1 + 10  # compacted whenever it grew past the bound
    assert PaperVenue(_template(), state_file=state).broker(ACCOUNT).order_count() == 40


async def test_admin_listing_counts_orders_per_client_order_id() -> None:
    venue = PaperVenue(_template())
    async with Served(venue) as served:
        shared, single, refused = _cid(), _cid(), _cid()

        async def a(broker: RemotePaperBroker) -> None:
            await broker.submit(_order(shared))
            await broker.submit(_order(shared))  # a retry: one order, two submits
            await broker.submit(_order(single, qty="3"))
            with pytest.raises(BrokerRejected):
                await broker.submit(_order(refused, qty="1000000"))

        await _with_adapter(served.url, a, "A")
        await _with_adapter(served.url, lambda b: b.submit(_order(shared)), "B")  # misrouted
        venue.broker("A").step(PARTS)
        async with httpx.AsyncClient(base_url=served.url) as http:
            full = (await http.get("/v1/admin/orders")).json()
            summary = (await http.get("/v1/admin/orders", params={"summary": 1})).json()
    by_cid = full["by_client_order_id"]
    assert by_cid[shared] == {"count": 2, "accounts": ["A", "B"], "submits": 3, "qty": "18",
                              "filled_qty": "9"}
    assert by_cid[single] == {"count": 1, "accounts": ["A"], "submits": 1, "qty": "3",
                              "filled_qty": "3"}
    assert refused not in by_cid
    assert summary == {"totals": {k: v for k, v in full["totals"].items() if k != "filled_qty"}}
    assert full["totals"] == {"accounts": 2, "orders": 3, "client_order_ids": 2,
                              "client_order_ids_held_twice": 1, "submit_requests": 5,
                              "resubmits": 1, "refused_client_order_ids": 1,
                              "filled_qty": "12"}
    assert {r["status"] for r in full["orders"] if r["account_id"] == "A"} == {"filled"}


async def test_errors_are_problem_json_with_stable_codes() -> None:
    venue = PaperVenue(_template())
    async with Served(venue) as served, httpx.AsyncClient(base_url=served.url) as http:
        assert (await http.put(f"/v1/accounts/{ACCOUNT}", json={"cash": "1000"})).status_code \
            == 201
        opened = await http.put(f"/v1/accounts/{ACCOUNT}", json={"cash": "5"})
        assert opened.status_code == 200 and opened.json()["cash"] == "1000"  # kept as is

        async def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
            assert r.status_code == status, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert body["status"] == status and body["code"] == code and body["title"]
            return body

        orders = f"/v1/accounts/{ACCOUNT}/orders"
        good = {"client_order_id": "c-1", "symbol": "AAPL", "side": "buy", "qty": "2"}
        await problem(await http.post(orders, content=b"{nope"), 400, "malformed_json")
        body = await problem(await http.post(orders, content=b'{"client_order_id": "c-1", '
                                             b'"symbol": "AAPL", "side": "buy", "qty": 2.5}'),
                             400, "invalid_request")
        assert body["field"] == "qty"  # a JSON number is refused, never read as a float
        body = await problem(await http.post(orders, json={**good, "quantity": "1"}), 400,
                             "invalid_request")
        assert body["field"] == "quantity"
        await problem(await http.post(orders, json={**good, "side": "hold"}), 400,
                      "invalid_request")
        await problem(await http.post(orders, json={**good, "qty": "5000"}), 422,
                      "insufficient_buying_power")
        await problem(await http.post(orders, json={**good, "symbol": "ZZZZ"}), 422,
                      "unknown_symbol")
        assert (await http.post(orders, json=good)).status_code == 201
        again = await http.post(orders, json=good)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        await problem(await http.post(orders, json={**good, "qty": "3"}), 422,
                      "client_order_id_conflict")
        await problem(await http.get(f"{orders}/nope"), 404, "order_not_found")
        await problem(await http.get("/v1/accounts/ghost/nav"), 404, "account_not_found")
        await problem(await http.get("/v1/elsewhere"), 404, "route_not_found")

        venue.set_fault(ACCOUNT, 503)
        r = await http.get(f"/v1/accounts/{ACCOUNT}/nav")
        await problem(r, 503, "injected_fault")
        assert r.headers["Retry-After"] == "1"
        venue.set_fault(ACCOUNT, 429)
        r = await http.get(f"/v1/accounts/{ACCOUNT}/nav")
        await problem(r, 429, "injected_fault")
        assert r.headers["Retry-After"] == "0"
        venue.set_fault(ACCOUNT, None)
        venue.broker(ACCOUNT).set_outage("maintenance")
        r = await http.get(f"/v1/accounts/{ACCOUNT}/positions")
        await problem(r, 503, "outage")
        venue.broker(ACCOUNT).set_outage(None)

        # every decimal in an answer is a string
        report = (await http.get(f"{orders}/c-1")).json()
        assert isinstance(report["qty"], str) and isinstance(report["filled_qty"], str)
        nav = (await http.get(f"/v1/accounts/{ACCOUNT}/nav")).json()
        assert isinstance(nav["nav"], str) and Decimal(nav["nav"]) == 1000


async def test_admin_endpoints_step_reject_and_inject_faults() -> None:
    venue = PaperVenue(_template())
    async with Served(venue) as served, httpx.AsyncClient(base_url=served.url) as http:
        broker = RemotePaperBroker(served.url, ACCOUNT, timeout=5)
        try:
            first, second = _order(), _order(qty="3")
            await broker.submit(first)
            await broker.submit(second)
            r = await http.post(f"/v1/admin/accounts/{ACCOUNT}/step", json={"ticks": 1})
            assert r.status_code == 200
            assert 0 < (await broker.order_report(first.client_order_id)).filled_qty < 9
            r = await http.post(f"/v1/admin/accounts/{ACCOUNT}/orders/"
                                f"{second.client_order_id}/reject", json={"reason": "risk"})
            assert r.json()["status"] == "rejected" and r.json()["reason"] == "risk"
            report = await broker.order_report(second.client_order_id)
            assert report.status is OrderStatus.REJECTED and report.reason == "risk"

            r = await http.put(f"/v1/admin/accounts/{ACCOUNT}/fault",
                               json={"status": 502})
            assert r.status_code == 200
            with pytest.raises(BrokerUnavailable) as info:
                await broker.positions()
            assert info.value.status == 502 and info.value.code == "injected_fault"
            await http.put(f"/v1/admin/accounts/{ACCOUNT}/fault",
                           json={"status": None, "lose_next_acks": 1})
            lost = _order(qty="1")
            with pytest.raises(BrokerUnavailable) as info:
                await broker.submit(lost)
            assert info.value.code == "ack_lost"
            assert venue.broker(ACCOUNT).order_count(lost.client_order_id) == 1
            assert (await broker.submit(lost)).client_order_id == lost.client_order_id
            bad = await http.put(f"/v1/admin/accounts/{ACCOUNT}/fault", json={"status": 404})
            assert bad.status_code == 400 and bad.json()["field"] == "status"
        finally:
            await broker.close()


async def test_a_lost_answer_to_a_slow_submit_is_retried_into_the_same_order() -> None:
    venue = PaperVenue(_template(), submit_delay=timedelta(seconds=0.5))
    async with Served(venue) as served:
        order = _order()

        async def work(broker: RemotePaperBroker) -> None:
            await broker.positions()  # open the account first
            with pytest.raises(BrokerUnavailable) as info:
                await broker.submit(order)
            assert info.value.code == "timeout"
            # the venue acted although the client gave up waiting
            assert venue.broker(ACCOUNT).order_count(order.client_order_id) == 1
            await asyncio.sleep(0.5)  # let the first answer drain
        await _with_adapter(served.url, work, timeout=0.15)
        ack = await _with_adapter(served.url, lambda b: b.submit(order), timeout=5)
        assert ack.client_order_id == order.client_order_id
        listing = venue.listing()["by_client_order_id"][order.client_order_id]
        assert listing["count"] == 1 and listing["submits"] == 2


async def test_cash_balances_are_read_from_the_venue() -> None:
    venue = PaperVenue(_template(fill_steps=(1, 1)))
    async with Served(venue) as served:
        async def work(broker: RemotePaperBroker) -> None:
            assert await broker.balances() == {"USD": Decimal(5000)}
            cid = _cid()
            await broker.submit(_order(cid, qty="10"))
            venue.broker(ACCOUNT).step()
            report = await broker.order_report(cid)
            assert report.filled_qty == 10
            spent = sum((f.qty * f.price for f in report.fills), Decimal(0))
            assert spent > 0
            assert await broker.balances() == {"USD": Decimal(5000) - spent}
        await _with_adapter(served.url, work, cash="5000")


async def test_set_price_is_sent_before_the_next_submit() -> None:
    venue = PaperVenue(PaperSettings(prices={}, tick=None, volatility=Decimal(0)))
    async with Served(venue) as served:
        async def work(broker: RemotePaperBroker) -> None:
            with pytest.raises(BrokerRejected) as info:
                await broker.submit(_order(symbol="MSFT", qty="1"))
            assert info.value.code == "unknown_symbol"
            broker.set_price("msft", Decimal("410.25"))  # synchronous, as the dispatcher calls
            assert venue.broker(ACCOUNT).order_count() == 0  # nothing sent yet
            await broker.submit(_order(symbol="MSFT", qty="1"))
            assert venue.broker(ACCOUNT).price("MSFT") == Decimal("410.25")
            await broker.mark_price("MSFT", Decimal("411"))
            assert venue.broker(ACCOUNT).price("MSFT") == Decimal("411")
            with pytest.raises(ValueError):
                broker.set_price("MSFT", 411.0)  # type: ignore[arg-type]
        await _with_adapter(served.url, work)


async def test_an_account_the_venue_lost_is_opened_again(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    async with Served(PaperVenue(_template())) as first:
        port = first.port
        broker = RemotePaperBroker(first.url, ACCOUNT, timeout=5, cash="5000")
        cid = _cid()
        await broker.submit(_order(cid, qty="1"))
    try:
        # restarted on the same port without a state file: the account and its order are gone
        async with Served(PaperVenue(_template()), port=port) as second:
            assert await broker.account_nav() == Decimal(5000)  # opened again, with its cash
            assert "opening it again" in caplog.text
            with pytest.raises(OrderNotFound):
                await broker.order_report(cid)
            assert second.venue.broker(ACCOUNT).cash == Decimal(5000)
    finally:
        await broker.close()


def _mock(status: int, body: Any = None, headers: dict[str, str] | None = None,
          content: bytes | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path == f"/v1/accounts/{ACCOUNT}":
            return httpx.Response(201, json={"account_id": ACCOUNT})
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        return httpx.Response(status, json=body, headers=headers)
    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("status", "code", "expected"), [
    (400, "invalid_request", BrokerRejected),
    (409, "conflict", BrokerRejected),
    (422, "insufficient_buying_power", BrokerRejected),
    (404, "route_not_found", BrokerRejected),
    (404, "order_not_found", OrderNotFound),
    (429, "injected_fault", BrokerUnavailable),
    (500, "internal_error", BrokerUnavailable),
    (502, None, BrokerUnavailable),
    (503, "outage", BrokerUnavailable),
])
async def test_statuses_map_to_the_broker_error_families(status: int, code: str | None,
                                                         expected: type[Exception]) -> None:
    body = {"status": status, "code": code, "detail": "x"} if code else None
    transport = _mock(status, body, headers={"Retry-After": "2"})
    broker = RemotePaperBroker("http://venue.test", ACCOUNT, transport=transport)
    try:
        with pytest.raises(expected) as info:
            await broker.submit(_order())
    finally:
        await broker.close()
    error = info.value
    assert type(error) is expected
    if expected is BrokerRejected:
        assert error.code == code and error.status == status  # type: ignore[attr-defined]
    if expected is BrokerUnavailable:
        assert error.retry_after == 2.0  # type: ignore[attr-defined]
        assert error.code == (code or "server_error")  # type: ignore[attr-defined]


async def test_answers_with_floats_or_garbage_are_never_read() -> None:
    report = {"client_order_id": "c", "broker_order_id": "b", "symbol": "AAPL", "side": "buy",
              "status": "filled", "qty": "1", "filled_qty": "1", "avg_price": "190",
              "reason": None, "fills": [{"trade_id": "t", "qty": 1.0, "price": "190",
                                         "ts": "2024-01-01T00:00:00+00:00"}]}
    for transport in (_mock(200, report), _mock(200, content=b"<html>"),
                      _mock(200, {"nav": 100000.5})):
        broker = RemotePaperBroker("http://venue.test", ACCOUNT, transport=transport)
        try:
            with pytest.raises(BrokerUnavailable) as info:
                await broker.order_report("c")
            assert info.value.code == "malformed_answer"
            with pytest.raises(BrokerUnavailable):
                await broker.account_nav()
        finally:
            await broker.close()


async def test_timeouts_and_refused_connections_are_unavailable() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    broker = RemotePaperBroker("http://venue.test", ACCOUNT,
                               transport=httpx.MockTransport(hang))
    try:
        with pytest.raises(BrokerUnavailable) as info:
            await broker.submit(_order())
        assert info.value.code == "timeout"
    finally:
        await broker.close()


@pytest.mark.parametrize(("url", "cash", "code"), [
    ("ftp://127.0.0.1:1", None, "invalid_venue_url"),
    ("not a url", None, "invalid_venue_url"),
    ("http://user:pw@127.0.0.1:1", None, "invalid_venue_url"),
    ("http://127.0.0.1:1", "lots", "invalid_cash"),
    ("http://127.0.0.1:1", "-5", "invalid_cash"),
])
async def test_a_misconfigured_follower_is_refused_not_crashed(url: str, cash: str | None,
                                                               code: str) -> None:
    broker = RemotePaperBroker(url, ACCOUNT, cash=cash)
    try:
        with pytest.raises(BrokerRejected) as info:
            await broker.submit(_order())
        assert info.value.code == code
        assert "pw" not in repr(broker) and "pw" not in str(info.value)
    finally:
        await broker.close()


async def test_bridged_paper_followers_use_the_venue_when_given_a_url() -> None:
    broker, creds = parse_bridge({"broker": "paper", "credentials": {
        "url": "http://127.0.0.1:8100", "cash": "1000000"}})
    remote = default_factory(broker, creds, "flw_1")
    local = default_factory("paper", {"cash": "5"}, "flw_1")
    try:
        assert isinstance(remote, RemotePaperBroker)
        assert remote.account_id == "flw_1" and remote.url == "http://127.0.0.1:8100"
        assert isinstance(local, PaperBroker)
    finally:
        await remote.close()
    async with Served(PaperVenue(PaperSettings(prices={}, tick=None))) as served:
        gateway = default_factory("paper", {"url": served.url, "cash": "1234.5"}, "flw_2")
        try:
            assert await gateway.account_nav() == Decimal("1234.5")
        finally:
            await gateway.close()
        assert set(served.venue.accounts) == {"flw_2"}  # the follower id is the account
