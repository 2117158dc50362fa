"""Test peers for the billing adapters, all on 127.0.0.1 and a free port.

* ``start_localstripe()`` runs the real ``localstripe`` (PyPI) in a subprocess, bound to
  127.0.0.1 with its pickle persistence switched off (see ``LOCALSTRIPE_WRAPPER``).
* ``StripeSim`` is a small **simulator** of the parts of Stripe's API that localstripe lacks or
  gets wrong for us: Prices, Checkout Sessions, subscription updates by price with
  ``proration_behavior``, draft invoices + invoice items + finalize, invoice payments and
  refunds (``pay_invoice`` pays an invoice with a new PaymentIntent), and ``Idempotency-Key``
  replay. It follows Stripe's API reference (form-encoded bodies, ``{"error": {...}}`` bodies,
  object shapes of the current API version, e.g. ``current_period_end`` on subscription items
  and ``parent.subscription_details`` on invoices); it is not Stripe. What it does *not* do:
  real payments (checkout is completed by the test with ``complete_checkout``), time-weighted
  prorations (a proration item is the full price difference), taxes, coupons, pagination,
  ``expand``, search, webhooks delivery (events are collected in ``events`` for the test to
  sign and feed to the gateway).
* ``FakeBtcpay`` is a fake BTCPay Server answering the Greenfield invoice paths with the
  documented field names and error bodies (including metadata updates and refund pull
  payments, recorded in ``refunds``), with test controls that move an invoice through
  payments, expiry, invalidation and settlement and emit the matching webhook bodies.
* ``WebhookInbox`` is an aiohttp receiver that records raw bodies and headers.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

# -- serving --------------------------------------------------------------------------------


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port; yields the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


class WebhookInbox:
    """Records every POST to ``/hook``: (raw body, headers)."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.status = status
        self._changed = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_post("/hook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self._changed:
            self.received.append((body, dict(request.headers)))
            self._changed.notify_all()
        return web.Response(status=self.status)

    async def wait_for(self, predicate: Callable[[list[tuple[bytes, dict[str, str]]]], bool],
                       timeout: float = 8.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.received)),
                                   timeout)


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` computed the way Stripe documents it, independently of any SDK:
    ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def btcpay_signature(body: bytes, secret: str) -> str:
    """``BTCPay-Sig`` as BTCPay documents it: ``sha256=HMAC256(UTF8(secret), body)``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- localstripe ----------------------------------------------------------------------------

# Run by ``python -c``. localstripe keeps its state in a ``Store`` (a dict) that pickles itself
# to /tmp/localstripe.pickle after every write (``Store.__setitem__``/``__delitem__`` and a
# middleware call ``dump_to_disk``) and its CLI reloads it (``try_load_from_disk``); both are
# replaced by no-ops on the class, so nothing is read from or written to /tmp. The CLI also
# binds ``::`` (all interfaces) on a fixed port: we bind 127.0.0.1 on port 0 ourselves and hand
# the socket to ``aiohttp.web.run_app`` with localstripe's own ``server.app``.
LOCALSTRIPE_WRAPPER = """
import socket
from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
print("LISTENING", sock.getsockname()[1], flush=True)
web.run_app(server.app, sock=sock, print=None, access_log=None)
"""


@dataclass
class LocalStripe:
    proc: subprocess.Popen[str]
    url: str
    log: IO[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()

    def log_tail(self, n: int = 2000) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-n:]


def start_localstripe(timeout: float = 15.0) -> LocalStripe:
    """Start localstripe; raises ``RuntimeError`` with its log when it does not come up."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - owned by LocalStripe, closed in stop()
    proc = subprocess.Popen([sys.executable, "-c", LOCALSTRIPE_WRAPPER],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                            text=True)
    ls = LocalStripe(proc, "", log)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("LISTENING "):
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        tail = ls.log_tail(800).strip() or "(no output)"
        ls.stop()
        raise RuntimeError(f"localstripe did not start (exit {proc.returncode}): {tail}")
    ls.url = f"http://127.0.0.1:{int(line.split()[1])}"
    return ls


# -- Stripe simulator -----------------------------------------------------------------------

SIM_API_VERSION = "2025-03-31.basil"  # the object shapes below follow this version and later
_PRORATIONS = ("create_prorations", "none", "always_invoice")


_PARAMS = web.RequestKey("params", dict)


def _sid(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(7)}"


def decode_stripe_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``, ``expand[]=x``) back into nested data."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # "x[]": list append
                break
            nxt_is_list = not last and parts[i + 1] == ""
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if nxt_is_list else {})
                if nxt_is_list:
                    node.append(value)
                    break
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


class StripeError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status, message, type_, code, param)

    def response(self) -> web.Response:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            err["code"] = self.code
        if self.param:
            err["param"] = self.param
        return web.json_response({"error": err}, status=self.status)


def _missing(kind: str, ident: object, param: str | None = None) -> StripeError:
    return StripeError(404 if param is None else 400, f"No such {kind}: '{ident}'",
                       code="resource_missing", param=param)


@dataclass
class StripeSim:
    """A Stripe-shaped simulator (see the module docstring for what it covers)."""

    api_key: str = "sk_test_sim"
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoice_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoice_payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _idem: dict[str, tuple[str, int, bytes]] = field(default_factory=dict)
    _session_extras: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Simulated clock: every event is one second after the previous one, so tests can state
    # an order; Stripe's own timestamps often tie within a second.
    _clock: Iterator[int] = field(default_factory=lambda: itertools.count(int(time.time())))

    def __post_init__(self) -> None:
        self.app = web.Application(middlewares=[self._errors, self._auth, self._idempotency])
        r = self.app.router
        r.add_post("/v1/customers", self._create_customer)
        r.add_post("/v1/checkout/sessions", self._create_session)
        r.add_get("/v1/checkout/sessions/{id}", self._get_session)
        r.add_get("/v1/subscriptions/{id}", self._get_subscription)
        r.add_post("/v1/subscriptions/{id}", self._update_subscription)
        r.add_delete("/v1/subscriptions/{id}", self._cancel_subscription)
        r.add_post("/v1/invoices", self._create_invoice)
        r.add_get("/v1/invoices/{id}", self._get_invoice)
        r.add_post("/v1/invoices/{id}/finalize", self._finalize_invoice)
        r.add_post("/v1/invoiceitems", self._create_invoice_item)
        r.add_get("/v1/invoice_payments", self._list_invoice_payments)
        r.add_get("/v1/refunds", self._list_refunds)
        r.add_post("/v1/refunds", self._create_refund)

    def now(self) -> int:
        return next(self._clock)

    # -- test controls ----------------------------------------------------------------------

    def add_price(self, price_id: str, unit_amount: int, currency: str = "usd",
                  interval: str | None = "month") -> dict[str, Any]:
        price = {
            "id": price_id, "object": "price", "active": True, "currency": currency,
            "unit_amount": unit_amount, "product": "prod_sim", "livemode": False,
            "type": "recurring" if interval else "one_time",
            "recurring": {"interval": interval, "interval_count": 1} if interval else None,
        }
        self.prices[price_id] = price
        return price

    def add_customer(self, metadata: dict[str, str] | None = None) -> str:
        cus = {"id": _sid("cus"), "object": "customer", "created": int(time.time()),
               "email": None, "metadata": dict(metadata or {}), "livemode": False,
               "invoice_settings": {"default_payment_method": "pm_sim_card"}}
        self.customers[cus["id"]] = cus
        return cus["id"]

    def add_subscription(self, customer: str, price_id: str, *, status: str = "active",
                         metadata: dict[str, str] | None = None) -> dict[str, Any]:
        start = int(time.time())
        sub_id = _sid("sub")
        sub = {
            "id": sub_id, "object": "subscription", "customer": customer, "status": status,
            "metadata": dict(metadata or {}), "created": start, "start_date": start,
            "cancel_at_period_end": False, "canceled_at": None, "ended_at": None,
            "collection_method": "charge_automatically", "latest_invoice": None,
            "livemode": False, "trial_end": None,
            "items": {"object": "list", "has_more": False, "total_count": 1,
                      "url": f"/v1/subscription_items?subscription={sub_id}",
                      "data": [self._item(sub_id, price_id, start)]},
        }
        self.subscriptions[sub_id] = sub
        return sub

    def complete_checkout(self, session_id: str, *,
                          payment_status: str = "paid") -> list[dict[str, Any]]:
        """What Stripe does when the customer pays on the hosted page: customer (if needed),
        subscription, first invoice, session completion. Returns the events it emitted."""
        session = self.sessions[session_id]
        extras = self._session_extras[session_id]
        start = len(self.events)
        customer = session["customer"] or self.add_customer()
        status = "trialing" if payment_status == "no_payment_required" else (
            "active" if payment_status == "paid" else "incomplete")
        sub = self.add_subscription(customer, extras["price"], status=status,
                                    metadata=extras["subscription_metadata"])
        self._event("customer.subscription.created", sub)
        if payment_status == "paid":
            inv = self._new_invoice(customer, extras["price_obj"]["currency"],
                                    billing_reason="subscription_create", subscription=sub)
            self._add_line(inv, extras["price_obj"]["unit_amount"], "Subscription", None)
            inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0)
            sub["latest_invoice"] = inv["id"]
            self._event("invoice.paid", inv)
        session.update(status="complete", payment_status=payment_status, customer=customer,
                       subscription=sub["id"], url=None)
        self._event("checkout.session.completed", session)
        return self.events[start:]

    # -- middlewares ------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except StripeError as e:
            return e.response()
        except web.HTTPNotFound:
            return StripeError(404, f"Unrecognized request URL ({request.method}: "
                                    f"{request.path}).").response()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            raise StripeError(401, "Invalid API Key provided.")
        if request.method == "POST":
            params = decode_stripe_form(parse_qsl(await request.text(), keep_blank_values=True))
        else:
            params = decode_stripe_form(request.query.items())
        request[_PARAMS] = params
        self.requests.append((request.method, request.path, params))
        return await handler(request)

    @web.middleware
    async def _idempotency(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        fingerprint = json.dumps([request.path, request[_PARAMS]], sort_keys=True)
        if key in self._idem:
            seen, status, body = self._idem[key]
            if seen != fingerprint:
                raise StripeError(
                    400, "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                    type_="idempotency_error")
            return web.Response(body=body, status=status, content_type="application/json",
                                headers={"Idempotent-Replayed": "true"})
        response = await handler(request)
        if isinstance(response, web.Response) and 200 <= response.status < 300:
            assert isinstance(response.body, bytes)
            self._idem[key] = (fingerprint, response.status, response.body)
        return response

    # -- handlers ---------------------------------------------------------------------------

    async def _create_customer(self, request: web.Request) -> web.Response:
        p = request[_PARAMS]
        cid = self.add_customer(_metadata(p))
        self.customers[cid]["email"] = p.get("email")
        return web.json_response(self.customers[cid])

    async def _create_session(self, request: web.Request) -> web.Response:
        p = request[_PARAMS]
        mode = p.get("mode")
        if not mode:
            raise StripeError(400, "Missing required param: mode.", code="parameter_missing",
                              param="mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeError(400, "Invalid mode: must be one of payment, setup, or "
                                   "subscription", code="parameter_invalid_empty", param="mode")
        if not p.get("success_url"):
            raise StripeError(400, "Missing required param: success_url.",
                              code="parameter_missing", param="success_url")
        customer = p.get("customer")
        if customer and customer not in self.customers:
            raise _missing("customer", customer, "customer")
        ref = p.get("client_reference_id")
        if ref is not None and len(ref) > 200:
            raise StripeError(400, "client_reference_id must be at most 200 characters",
                              param="client_reference_id")
        items = p.get("line_items")
        if not isinstance(items, list) or not items:
            raise StripeError(400, "Missing required param: line_items.",
                              code="parameter_missing", param="line_items")
        if mode != "subscription" or len(items) != 1:
            raise StripeError(400, "the simulator handles one line item in subscription mode")
        price_id = items[0].get("price")
        if price_id not in self.prices:
            raise _missing("price", price_id, "line_items[0][price]")
        price = self.prices[price_id]
        if price["recurring"] is None:
            raise StripeError(400, "You must provide at least one recurring price in "
                                   "`subscription` mode when using prices.",
                              param="line_items[0][price]")
        sub_data = p.get("subscription_data") or {}
        sid = f"cs_test_{secrets.token_hex(16)}"
        session = {
            "id": sid, "object": "checkout.session", "mode": mode, "status": "open",
            "payment_status": "unpaid", "client_reference_id": ref, "customer": customer,
            "subscription": None, "metadata": _metadata(p), "livemode": False,
            "success_url": p["success_url"], "cancel_url": p.get("cancel_url"),
            "currency": price["currency"], "amount_total": price["unit_amount"],
            "created": int(time.time()), "expires_at": int(time.time()) + 86400,
            "url": f"https://checkout.stripe.com/c/pay/{sid}",
        }
        self.sessions[sid] = session
        self._session_extras[sid] = {"price": price_id, "price_obj": price,
                                     "subscription_metadata": _metadata(sub_data)}
        return web.json_response(session)

    async def _get_session(self, request: web.Request) -> web.Response:
        sid = request.match_info["id"]
        if sid not in self.sessions:
            raise _missing("checkout.session", sid)
        return web.json_response(self.sessions[sid])

    def _subscription(self, request: web.Request) -> dict[str, Any]:
        sub_id = request.match_info["id"]
        if sub_id not in self.subscriptions:
            raise _missing("subscription", sub_id)
        return self.subscriptions[sub_id]

    async def _get_subscription(self, request: web.Request) -> web.Response:
        return web.json_response(self._subscription(request))

    async def _update_subscription(self, request: web.Request) -> web.Response:
        sub, p = self._subscription(request), request[_PARAMS]
        if sub["status"] == "canceled" and set(p) - {"metadata", "cancellation_details"}:
            raise StripeError(400, "A canceled subscription can only update its "
                                   "cancellation_details and metadata.")
        proration = p.get("proration_behavior", "create_prorations")
        if proration not in _PRORATIONS:
            raise StripeError(400, "Invalid proration_behavior: must be one of always_invoice, "
                                   "create_prorations, or none",
                              code="parameter_invalid_empty", param="proration_behavior")
        previous: dict[str, Any] = {}
        changes: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i, change in enumerate(p.get("items") or []):
            item = next((it for it in sub["items"]["data"] if it["id"] == change.get("id")),
                        None)
            if item is None:
                raise StripeError(400, f"Invalid subscription item: '{change.get('id')}'",
                                  param=f"items[{i}][id]")
            price_id = change.get("price")
            if price_id is not None and price_id not in self.prices:
                raise _missing("price", price_id, f"items[{i}][price]")
            if price_id is not None and price_id != item["price"]["id"]:
                changes.append((item, self.prices[price_id]))
        if changes:
            previous["items"] = copy.deepcopy(sub["items"])
        for item, price in changes:
            old = item["price"]
            item["price"] = price
            if proration != "none":
                # simplified: the whole price difference, not weighted by the time left
                self._pending_item(sub["customer"], price["unit_amount"] - old["unit_amount"],
                                   price["currency"], "Proration", subscription=sub["id"])
        if changes and proration == "always_invoice":
            inv = self._new_invoice(sub["customer"], changes[0][1]["currency"],
                                    billing_reason="subscription_update", subscription=sub)
            self._sweep_pending(inv)
            self._finalize(inv)
        if "metadata" in p:
            previous["metadata"] = dict(sub["metadata"])
            _merge_metadata(sub["metadata"], p["metadata"])
        if "cancel_at_period_end" in p:
            previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
            sub["cancel_at_period_end"] = p["cancel_at_period_end"] == "true"
        self._event("customer.subscription.updated", sub, previous)
        return web.json_response(sub)

    async def _cancel_subscription(self, request: web.Request) -> web.Response:
        sub = self._subscription(request)
        if sub["status"] == "canceled":
            # Stripe refuses to cancel twice; the exact wording here is the simulator's own.
            raise StripeError(400, f"This subscription has already been canceled: "
                                   f"'{sub['id']}'")
        now = int(time.time())
        sub.update(status="canceled", canceled_at=now, ended_at=now)
        self._event("customer.subscription.deleted", sub)
        return web.json_response(sub)

    async def _create_invoice(self, request: web.Request) -> web.Response:
        p = request[_PARAMS]
        customer = p.get("customer")
        if not customer:
            raise StripeError(400, "Missing required param: customer.",
                              code="parameter_missing", param="customer")
        if customer not in self.customers:
            raise _missing("customer", customer, "customer")
        behavior = p.get("pending_invoice_items_behavior", "exclude")
        if behavior not in ("include", "exclude"):
            raise StripeError(400, "Invalid pending_invoice_items_behavior",
                              param="pending_invoice_items_behavior")
        inv = self._new_invoice(customer, p.get("currency", "usd"), billing_reason="manual")
        inv.update(description=p.get("description"), metadata=_metadata(p),
                   auto_advance=p.get("auto_advance", "true") == "true",
                   collection_method=p.get("collection_method", "charge_automatically"))
        if behavior == "include":
            self._sweep_pending(inv)
        return web.json_response(inv)

    async def _get_invoice(self, request: web.Request) -> web.Response:
        iid = request.match_info["id"]
        if iid not in self.invoices:
            raise _missing("invoice", iid)
        return web.json_response(self.invoices[iid])

    def pay_invoice(self, invoice_id: str) -> str:
        """The open invoice is paid in full by a new PaymentIntent (returned)."""
        inv = self.invoices[invoice_id]
        pi = _sid("pi")
        inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0)
        ip = _sid("inpay")
        self.invoice_payments[ip] = {
            "id": ip, "object": "invoice_payment", "invoice": invoice_id, "is_default": True,
            "amount_paid": inv["amount_due"], "currency": inv["currency"], "status": "paid",
            "payment": {"type": "payment_intent", "payment_intent": pi}}
        self._event("invoice.paid", inv)
        return pi

    async def _list_invoice_payments(self, request: web.Request) -> web.Response:
        iid = request[_PARAMS].get("invoice")
        data = [p for p in self.invoice_payments.values() if p["invoice"] == iid]
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "url": "/v1/invoice_payments"})

    async def _list_refunds(self, request: web.Request) -> web.Response:
        pi = request[_PARAMS].get("payment_intent")
        data = [r for r in self.refunds.values() if r["payment_intent"] == pi]
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "url": "/v1/refunds"})

    async def _create_refund(self, request: web.Request) -> web.Response:
        p = request[_PARAMS]
        pi = p.get("payment_intent")
        paid = [x for x in self.invoice_payments.values()
                if x["payment"]["payment_intent"] == pi]
        if not paid:
            raise _missing("payment_intent", pi, "payment_intent")
        if p.get("reason") not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise StripeError(400, "Invalid reason", param="reason")
        left = paid[0]["amount_paid"] - sum(r["amount"] for r in self.refunds.values()
                                            if r["payment_intent"] == pi)
        amount = int(p.get("amount", left))
        if amount <= 0 or amount > left:
            raise StripeError(400, f"Refund amount ({amount}) is greater than unrefunded "
                              f"amount on charge ({left})", code="amount_too_large",
                              param="amount")
        rid = _sid("re")
        self.refunds[rid] = {"id": rid, "object": "refund", "amount": amount,
                             "currency": paid[0]["currency"], "payment_intent": pi,
                             "reason": p.get("reason"), "metadata": _metadata(p),
                             "status": "succeeded", "created": self.now()}
        return web.json_response(self.refunds[rid])

    async def _create_invoice_item(self, request: web.Request) -> web.Response:
        p = request[_PARAMS]
        customer = p.get("customer")
        if customer not in self.customers:
            raise _missing("customer", customer, "customer")
        try:
            amount = int(p["amount"])
        except (KeyError, ValueError):
            raise StripeError(400, "Missing required param: amount.", code="parameter_missing",
                              param="amount") from None
        if not p.get("currency"):
            raise StripeError(400, "Missing required param: currency.",
                              code="parameter_missing", param="currency")
        invoice_id = p.get("invoice")
        ii = self._pending_item(customer, amount, p["currency"], p.get("description"),
                                metadata=_metadata(p))
        if invoice_id:
            inv = self.invoices.get(invoice_id)
            if inv is None:
                raise _missing("invoice", invoice_id, "invoice")
            if inv["status"] != "draft" or inv["customer"] != customer:
                raise StripeError(400, "You can only add invoice items to draft invoices of "
                                       "the same customer.", param="invoice")
            self._attach(inv, ii)
        return web.json_response(ii)

    async def _finalize_invoice(self, request: web.Request) -> web.Response:
        iid = request.match_info["id"]
        inv = self.invoices.get(iid)
        if inv is None:
            raise _missing("invoice", iid)
        if inv["status"] != "draft":
            raise StripeError(400, "This invoice is already finalized, you can't re-finalize "
                                   "a non-draft invoice.")
        self._finalize(inv)
        return web.json_response(inv)

    # -- internals --------------------------------------------------------------------------

    def _item(self, sub_id: str, price_id: str, start: int) -> dict[str, Any]:
        return {"id": _sid("si"), "object": "subscription_item", "subscription": sub_id,
                "price": self.prices[price_id], "quantity": 1, "metadata": {},
                "current_period_start": start, "current_period_end": start + 30 * 86400}

    def _event(self, type_: str, obj: dict[str, Any],
               previous: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        ev = {"id": _sid("evt"), "object": "event", "api_version": SIM_API_VERSION,
              "created": self.now(), "data": data, "livemode": False, "pending_webhooks": 1,
              "type": type_}
        self.events.append(ev)
        return ev

    def _new_invoice(self, customer: str, currency: str, *, billing_reason: str,
                     subscription: dict[str, Any] | None = None) -> dict[str, Any]:
        iid = _sid("in")
        parent = None
        if subscription is not None:
            parent = {"type": "subscription_details", "quote_details": None,
                      "subscription_details": {"subscription": subscription["id"],
                                               "metadata": dict(subscription["metadata"])}}
        inv = {
            "id": iid, "object": "invoice", "customer": customer, "currency": currency,
            "status": "draft", "amount_due": 0, "amount_paid": 0, "amount_remaining": 0,
            "subtotal": 0, "total": 0, "attempt_count": 0, "auto_advance": True,
            "collection_method": "charge_automatically", "billing_reason": billing_reason,
            "description": None, "metadata": {}, "number": None, "hosted_invoice_url": None,
            "parent": parent, "created": int(time.time()), "livemode": False,
            "next_payment_attempt": None,
            "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                      "url": f"/v1/invoices/{iid}/lines"},
        }
        self.invoices[iid] = inv
        return inv

    def _pending_item(self, customer: str, amount: int, currency: str,
                      description: str | None, *, subscription: str | None = None,
                      metadata: dict[str, str] | None = None) -> dict[str, Any]:
        ii = {"id": _sid("ii"), "object": "invoiceitem", "customer": customer,
              "amount": amount, "currency": currency, "description": description,
              "invoice": None, "subscription": subscription, "metadata": metadata or {},
              "date": int(time.time()), "livemode": False}
        self.invoice_items[ii["id"]] = ii
        return ii

    def _add_line(self, inv: dict[str, Any], amount: int, description: str,
                  invoice_item: str | None) -> None:
        inv["lines"]["data"].append({
            "id": _sid("il"), "object": "line_item", "amount": amount,
            "currency": inv["currency"], "description": description, "invoice": inv["id"],
            "parent": {"type": "invoice_item_details",
                       "invoice_item_details": {"invoice_item": invoice_item}}
            if invoice_item else None,
        })
        inv["lines"]["total_count"] = len(inv["lines"]["data"])
        total = sum(line["amount"] for line in inv["lines"]["data"])
        inv.update(subtotal=total, total=total, amount_due=total, amount_remaining=total)

    def _attach(self, inv: dict[str, Any], ii: dict[str, Any]) -> None:
        ii["invoice"] = inv["id"]
        self._add_line(inv, ii["amount"], ii["description"] or "Invoice item", ii["id"])

    def _sweep_pending(self, inv: dict[str, Any]) -> None:
        for ii in self.invoice_items.values():
            if ii["customer"] == inv["customer"] and ii["invoice"] is None:
                self._attach(inv, ii)

    def _finalize(self, inv: dict[str, Any]) -> None:
        inv.update(status="open" if inv["amount_due"] > 0 else "paid",
                   number=f"SIM-{len(self.invoices):04d}",
                   hosted_invoice_url=f"https://invoice.stripe.com/i/sim_{inv['id']}")
        self._event("invoice.finalized", inv)


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    md = params.get("metadata") or {}
    if not isinstance(md, dict):
        raise StripeError(400, "Invalid object", param="metadata")
    for k, v in md.items():
        if len(k) > 40 or len(str(v)) > 500:
            raise StripeError(400, "Metadata keys are at most 40 and values at most 500 "
                                   "characters", param=f"metadata[{k}]")
    return {k: v for k, v in md.items() if v != ""}


def _merge_metadata(target: dict[str, str], update: dict[str, str]) -> None:
    for k, v in update.items():
        if v == "":
            target.pop(k, None)  # Stripe: an empty value unsets the key
        else:
            target[k] = v


# -- BTCPay Server fake ---------------------------------------------------------------------

_CURRENCIES = frozenset({"USD", "EUR", "GBP", "CHF", "JPY", "BTC", "SATS"})


@dataclass
class FakeBtcpay:
    """Greenfield invoice endpoints of one BTCPay Server with an API key for some stores.

    Deviations: no exchange rates (payments are given in the invoice currency), one payment
    method (``BTC-CHAIN``), no confirmations model beyond ``settle_payment``, webhooks are
    delivered once (no automatic redelivery; ``redeliver`` does it on demand).
    """

    api_key: str = "btcpay-test-api-key"
    stores: frozenset[str] = frozenset({"store_main"})
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    webhooks: list[tuple[str, str]] = field(default_factory=list)  # (url, secret)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    outage: int | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)
    _paid: dict[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.app = web.Application(middlewares=[self._guard])
        r = self.app.router
        r.add_post("/api/v1/stores/{storeId}/invoices", self._create)
        r.add_get("/api/v1/stores/{storeId}/invoices", self._list)
        r.add_get("/api/v1/stores/{storeId}/invoices/{invoiceId}", self._get)
        r.add_put("/api/v1/stores/{storeId}/invoices/{invoiceId}", self._update)
        r.add_post("/api/v1/stores/{storeId}/invoices/{invoiceId}/refund", self._refund)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else None
        self.requests.append((request.method, str(request.rel_url), body))
        if self.outage:
            return web.json_response({"code": "unavailable", "message": "Service unavailable"},
                                     status=self.outage)
        if request.headers.get("Authorization") != f"token {self.api_key}":
            return web.json_response(
                {"code": "unauthenticated",
                 "message": "Authentication is required for accessing this endpoint"},
                status=401)
        store = request.match_info.get("storeId")
        if store is not None and store not in self.stores:
            return web.json_response(
                {"code": "insufficient-api-permissions",
                 "message": "The API key does not have the required permission "
                            "btcpay.store.cancreateinvoice for this store"}, status=403)
        return await handler(request)

    async def _create(self, request: web.Request) -> web.Response:
        try:
            doc = json.loads(await request.text(), parse_float=Decimal)
        except ValueError:
            return _validation([("", "Invalid JSON")])
        if not isinstance(doc, dict):
            return _validation([("", "Expected an object")])
        errors: list[tuple[str, str]] = []
        amount = None
        if doc.get("amount") is not None:
            try:
                amount = Decimal(str(doc["amount"]))
                if amount < 0:
                    errors.append(("amount", "The amount should be 0 or more."))
            except InvalidOperation:
                errors.append(("amount", "The amount should be a decimal"))
        currency = (doc.get("currency") or "USD").upper()
        if currency not in _CURRENCIES:
            errors.append(("currency", "Invalid currency"))
        metadata = doc.get("metadata") or {}
        if not isinstance(metadata, dict):
            errors.append(("metadata", "metadata should be a JSON object"))
        checkout = doc.get("checkout") or {}
        redirect = checkout.get("redirectURL")
        if redirect is not None and not re.match(r"^https?://", str(redirect)):
            errors.append(("checkout.redirectURL", "Should be an absolute URL"))
        expiration = int(checkout.get("expirationMinutes") or 15)
        if expiration < 1:
            errors.append(("checkout.expirationMinutes", "Should be at least 1 minute"))
        if errors:
            return _validation(errors)
        now = int(time.time())
        inv_id = secrets.token_urlsafe(16).replace("-", "a").replace("_", "b")[:22]
        inv = {
            "id": inv_id, "storeId": request.match_info["storeId"],
            "amount": format(amount, "f") if amount is not None else "0",
            "paidAmount": "0", "currency": currency, "type": "Standard",
            "checkoutLink": f"{request.scheme}://{request.host}/i/{inv_id}",
            "createdTime": now, "expirationTime": now + expiration * 60,
            "monitoringExpiration": now + expiration * 60 + 1440 * 60,
            "status": "New", "additionalStatus": "None",
            "availableStatusesForManualMarking": ["Settled", "Invalid"], "archived": False,
            "metadata": metadata,
            "checkout": {"speedPolicy": "MediumSpeed", "paymentMethods": ["BTC-CHAIN"],
                         "defaultPaymentMethod": None, "lazyPaymentMethods": False,
                         "expirationMinutes": expiration, "monitoringMinutes": 1440,
                         "paymentTolerance": 0.0, "redirectURL": redirect,
                         "redirectAutomatically": False, "defaultLanguage": None},
            "receipt": {"enabled": True, "showQR": None, "showPayments": None},
        }
        self.invoices[inv_id] = inv
        self._paid[inv_id] = Decimal(0)
        self._emit("InvoiceCreated", inv)
        return _json(inv)

    async def _list(self, request: web.Request) -> web.Response:
        store = request.match_info["storeId"]
        order_ids = request.query.getall("orderId", [])
        found = [i for i in self.invoices.values() if i["storeId"] == store
                 and (not order_ids or i["metadata"].get("orderId") in order_ids)]
        return _json(sorted(found, key=lambda i: i["createdTime"], reverse=True))

    async def _get(self, request: web.Request) -> web.Response:
        inv = self.invoices.get(request.match_info["invoiceId"])
        if inv is None or inv["storeId"] != request.match_info["storeId"]:
            return web.json_response({"code": "invoice-not-found",
                                      "message": "The invoice was not found"}, status=404)
        return _json(inv)

    async def _update(self, request: web.Request) -> web.Response:
        inv = self.invoices.get(request.match_info["invoiceId"])
        if inv is None or inv["storeId"] != request.match_info["storeId"]:
            return web.json_response({"code": "invoice-not-found",
                                      "message": "The invoice was not found"}, status=404)
        doc = json.loads(await request.text())
        if isinstance(doc.get("metadata"), dict):
            inv["metadata"] = doc["metadata"]
        return _json(inv)

    async def _refund(self, request: web.Request) -> web.Response:
        inv = self.invoices.get(request.match_info["invoiceId"])
        if inv is None or inv["storeId"] != request.match_info["storeId"]:
            return web.json_response({"code": "invoice-not-found",
                                      "message": "The invoice was not found"}, status=404)
        doc = json.loads(await request.text(), parse_float=Decimal)
        if inv["status"] != "Settled":
            return web.json_response({"code": "non-refundable",
                                      "message": "Cannot refund this invoice"}, status=422)
        if doc.get("refundVariant") != "Custom" or not doc.get("customAmount") \
                or not doc.get("paymentMethod"):
            return _validation([("refundVariant", "Custom needs customAmount, "
                                                  "customCurrency and paymentMethod")])
        self.refunds.append({"invoiceId": inv["id"], **doc})
        return _json({"id": _btcpay_id(), "name": doc.get("name"),
                      "amount": str(doc["customAmount"]), "currency": doc.get("customCurrency"),
                      "viewLink": f"{request.scheme}://{request.host}/pull-payments/x"})

    # -- test controls: each returns the webhook bodies it emitted ---------------------------

    def receive_payment(self, invoice_id: str, value: Decimal | str, *,
                        settle: bool = True) -> list[dict[str, Any]]:
        """A payment is seen (and, with ``settle``, confirmed). Paid in full before expiry:
        Processing, then Settled. After expiry: the invoice stays Expired, ``PaidLate``."""
        inv = self.invoices[invoice_id]
        start = len(self.deliveries)
        value = Decimal(value)
        late = inv["status"] == "Expired"
        self._paid[invoice_id] += value
        inv["paidAmount"] = format(self._paid[invoice_id], "f")
        payment = {"id": f"{secrets.token_hex(32)}-0", "receivedDate": int(time.time()),
                   "value": format(value, "f"), "fee": "0.00000141", "status": "Processing",
                   "destination": "bc1qsimulatedaddress0000000000000000000000"}
        extra = {"afterExpiration": late, "paymentMethod": "BTC-CHAIN"}
        self._emit("InvoiceReceivedPayment", inv, payment=dict(payment), **extra)
        full = self._paid[invoice_id] >= Decimal(inv["amount"])
        over = self._paid[invoice_id] > Decimal(inv["amount"])
        if late:
            inv["additionalStatus"] = "PaidLate"
        elif full:
            inv.update(status="Processing", additionalStatus="PaidOver" if over else "None")
            self._emit("InvoiceProcessing", inv, overPaid=over)
        else:
            inv["additionalStatus"] = "PaidPartial"
        if settle:
            payment["status"] = "Settled"
            self._emit("InvoicePaymentSettled", inv, payment=dict(payment), **extra)
            if full and not late:
                inv["status"] = "Settled"
                self._emit("InvoiceSettled", inv, manuallyMarked=False, overPaid=over)
        return self.deliveries[start:]

    def expire(self, invoice_id: str) -> list[dict[str, Any]]:
        inv = self.invoices[invoice_id]
        start = len(self.deliveries)
        partially = Decimal(0) < self._paid[invoice_id] < Decimal(inv["amount"])
        inv.update(status="Expired", additionalStatus="PaidPartial" if partially else "None")
        self._emit("InvoiceExpired", inv, partiallyPaid=partially)
        return self.deliveries[start:]

    def mark(self, invoice_id: str, status: str) -> list[dict[str, Any]]:
        """An operator marks the invoice ``Settled`` or ``Invalid`` by hand."""
        inv = self.invoices[invoice_id]
        start = len(self.deliveries)
        inv.update(status=status, additionalStatus="Marked")
        if status == "Settled":
            self._emit("InvoiceSettled", inv, manuallyMarked=True, overPaid=False)
        else:
            self._emit("InvoiceInvalid", inv, manuallyMarked=True)
        return self.deliveries[start:]

    def redeliver(self, delivery: dict[str, Any]) -> dict[str, Any]:
        again = dict(delivery, deliveryId=_btcpay_id(), isRedelivery=True,
                     originalDeliveryId=delivery["originalDeliveryId"],
                     timestamp=int(time.time()))
        self.deliveries.append(again)
        return again

    async def deliver(self, delivery: dict[str, Any]) -> list[int]:
        """POST one webhook body to every registered webhook, signed; the HTTP statuses."""
        body = json.dumps(delivery).encode()
        statuses = []
        async with aiohttp.ClientSession() as session:
            for url, secret in self.webhooks:
                headers = {"Content-Type": "application/json",
                           "BTCPay-Sig": btcpay_signature(body, secret)}
                async with session.post(url, data=body, headers=headers) as r:
                    statuses.append(r.status)
        return statuses

    def _emit(self, type_: str, inv: dict[str, Any], **extra: Any) -> dict[str, Any]:
        delivery_id = _btcpay_id()
        ev = {"deliveryId": delivery_id, "webhookId": "wh_sim", "originalDeliveryId":
              delivery_id, "isRedelivery": False, "type": type_, "timestamp": int(time.time()),
              "storeId": inv["storeId"], "invoiceId": inv["id"],
              "metadata": copy.deepcopy(inv["metadata"]), **extra}
        self.deliveries.append(ev)
        return ev


def _btcpay_id() -> str:
    return secrets.token_urlsafe(16).replace("-", "c").replace("_", "d")[:22]


def _json(doc: Any) -> web.Response:
    return web.json_response(doc, dumps=lambda d: json.dumps(d, default=str))


def _validation(errors: list[tuple[str, str]]) -> web.Response:
    return web.json_response([{"path": p, "message": m} for p, m in errors], status=400)

