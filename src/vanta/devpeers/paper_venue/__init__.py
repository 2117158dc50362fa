"""Paper venue: the paper simulator as its own process, reached over HTTP.

The in-process :class:`~vanta.adapters.brokers.paper.PaperBroker` lives and dies with the
dispatcher that built it, so a dispatcher killed with SIGKILL takes the venue's orders with it
and "one order per child" cannot be checked across a crash. This package wraps one
``PaperBroker`` per *account* in a small aiohttp server (``vanta paper venue``); the platform
reaches it through :class:`~vanta.adapters.brokers.paper_remote.RemotePaperBroker`. Accounts,
orders and fills then outlive any dispatcher, and with a state file any venue restart too.

API (JSON; every quantity, price and amount is a **string** holding a decimal number, never a
JSON number; timestamps are RFC 3339 UTC)::

    GET  /healthz                                        {"ok": true}
    PUT  /v1/accounts/{account}                          open the account, idempotent
         {"cash": "100000"?, "prices": {"AAPL": "190"}?}  201 created / 200 already open (as is)
    GET  /v1/accounts/{account}                          {"account_id","cash","nav","positions",
                                                          "orders"}
    POST /v1/accounts/{account}/orders                   submit by client order id
         {"client_order_id","symbol","side","qty","tif"?,"limit_price"?}
         201 placed / 200 the id already names this order (same ack, "duplicate": true)
         ack: {"client_order_id","broker_order_id","status","submitted_at","duplicate"}
    GET  /v1/accounts/{account}/orders/{client_order_id} order report:
         {"client_order_id","broker_order_id","symbol","side","status","qty","filled_qty",
          "avg_price"|null,"reason"|null,"submitted_at",
          "fills": [{"trade_id","qty","price","ts"}]}
    POST /v1/accounts/{account}/orders/{client_order_id}/cancel   200 with the report (a no-op
                                                         on a finished order)
    GET  /v1/accounts/{account}/positions                {"positions": {"AAPL": "20"}}
    GET  /v1/accounts/{account}/nav                      {"nav": "...", "cash": "..."}
    PUT  /v1/accounts/{account}/prices/{symbol}          {"price": "190.00"}: mark the symbol

    GET  /v1/admin/orders[?summary=1]                    every order of every account
         (``summary``: only "totals", without "filled_qty", and no account's market clock
         moves, so it is cheap to poll):
         {"orders": [{"account_id","client_order_id","broker_order_id","symbol","side","qty",
                      "filled_qty","status","fills","submits"}],
          "by_client_order_id": {cid: {"count","accounts","submits","qty","filled_qty"}},
          "totals": {"accounts","orders","client_order_ids","client_order_ids_held_twice",
                     "submit_requests","resubmits","refused_client_order_ids",
                     "filled_qty"}}
    POST /v1/admin/accounts/{account}/step               {"ticks": 1}: advance the market now
    PUT  /v1/admin/accounts/{account}/fault              {"status": 503|429|500|null,
                                                          "lose_next_acks": 0}
    POST /v1/admin/accounts/{account}/orders/{cid}/reject {"reason"?}: late rejection

Path segments are percent-encoded (a client order id may hold any character). ``submits``
counts submit *requests* per client order id, so a test can tell a retried submit (count 2,
one order) from a second order (``count`` 2); ``resubmits`` totals the submits beyond the first
for ids the venue holds, ``refused_client_order_ids`` the ids submitted but never placed.

Errors are ``application/problem+json`` (RFC 9457) with a stable ``code``:

* 400 ``malformed_json`` / ``invalid_request`` (``field`` names the culprit; numbers given
  as JSON numbers are refused, so a float can never slip in);
* 404 ``account_not_found`` / ``order_not_found`` / ``route_not_found``; 405
  ``method_not_allowed``; 413 ``body_too_large`` (64 KiB);
* 422 the simulator's :class:`~vanta.application.ports.brokers.BrokerRejected` codes
  (``insufficient_buying_power``, ``insufficient_qty``, ``unknown_symbol``, ``invalid_qty``,
  ``client_order_id_conflict``): terminal;
* 503 :class:`~vanta.application.ports.brokers.BrokerUnavailable` (``outage``, ``injected``,
  ``ack_lost``: the order *was* placed but the answer is reported lost) with ``Retry-After``;
  an injected fault answers its own status with ``injected_fault`` (429 with
  ``Retry-After: 0``); 500 ``internal_error`` for a bug in the venue.

Accounts are created from a template :class:`~vanta.adapters.brokers.paper.PaperSettings`
(``cash`` and ``prices`` may be given when opening); each account's seed is the template's
seed mixed with a CRC-32 of the account id, so runs are reproducible.

``submit_delay`` holds every submit's answer back for a while *after* the venue acted (the
return leg of a slow network): a client that dies meanwhile leaves a placed order whose ack it
never saw, the case that makes idempotent resubmission matter.

**Persistence** (``state_file``): after every request that changed an account, the account's
complete state (settings, cash, positions, prices, orders with their fills, sequence counters,
the random generator's state, the tick clock's epoch) is appended to the file as one JSON line
before the answer leaves; the last line per account wins when the venue starts again. The file
is compacted (one line per account, written to a temporary file and renamed) when it starts and
whenever it grows to several times the number of accounts. A line cut short by a crash is
ignored, so a killed venue comes back with every order it acknowledged. Writes are not fsynced:
the state survives the process, not the machine. Injected faults are not persisted. The venue
reads the simulator's internals to do this (in :mod:`.state` only) and is tested against it
(``tests/contract/test_paper_remote.py``).

There is no authentication: the venue binds 127.0.0.1 unless told otherwise.

Layout: :mod:`.venue` (accounts and the in-process API), :mod:`.server` (HTTP routes, error
mapping, serving), :mod:`.wire` (problem answers and JSON parsing), :mod:`.state` (the
simulator's state as JSON) and :mod:`.journal` (the state file).
"""

from vanta.devpeers.paper_venue.server import run_venue

# the accounts' template (re-exported: the venue's command builds one from its options)
from vanta.devpeers.paper_venue.venue import Account, PaperSettings, PaperVenue, account_seed
from vanta.devpeers.paper_venue.wire import Problem

__all__ = ["Account", "PaperSettings", "PaperVenue", "Problem", "account_seed", "run_venue"]
