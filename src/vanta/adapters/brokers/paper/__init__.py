"""In-process paper broker: the embedded default venue.

A small, deterministic market simulator. Given the same seed, settings, clock readings and
call sequence it produces the same prices, fills, trade ids and balances.

* **Prices** start from :attr:`PaperSettings.prices` and take one bounded random-walk step per
  tick (``volatility`` is the largest relative move per tick), rounded to ``price_increment``.
* **Time** is measured in ticks. With ``tick`` set, every call first catches up with the ticks
  that the clock says have elapsed since the broker was created; :meth:`PaperBroker.step`
  advances explicitly (tests usually set ``tick=None`` and step by hand, or pass a manual
  clock).
* **Orders** are checked when submitted (known symbol, buying power, holdings unless
  ``allow_short``) and refused with :class:`BrokerRejected` otherwise, leaving nothing behind,
  like a venue's synchronous refusal. An accepted order is split into ``fill_steps`` partial
  fills (a random count and random sizes, in lot steps) and fills one part per tick while its
  price condition holds: market orders always, limit buys at or below the limit, limit sells
  at or above it, at the current price. ``ioc`` fills at most one part then cancels the rest;
  ``fok`` fills completely on its first tick or is cancelled. With ``reject_probability`` an
  accepted order may be rejected by the "venue" on its first tick (status ``rejected``).
* **Accounting**: every fill moves the position and the cash (``fee_rate`` of the notional is
  charged on top); NAV is cash plus each position at the current price.
* **Idempotency**: a second submit with the same client order id returns the first order's ack
  (and raises ``client_order_id_conflict`` if the order differs).
* **Fault injection** for outage tests: :meth:`PaperBroker.set_outage`,
  :meth:`PaperBroker.fail_next` (the next calls raise :class:`BrokerUnavailable` and do
  nothing) and :meth:`PaperBroker.lose_next_ack` (the order *is* placed, then the answer is
  "lost" as ``BrokerUnavailable``, the case that makes idempotent retries necessary).

Nothing here is a real market: there is no order book, no market hours and no ``day`` expiry.

Layout: :mod:`.settings` (:class:`PaperSettings`), :mod:`.orders` (the order record and its
reports), :mod:`.market` (prices, matching, fills and accounting) and :mod:`.broker` (the
gateway, test controls and fault injection).
"""

from vanta.adapters.brokers.paper.broker import PaperBroker
from vanta.adapters.brokers.paper.orders import PaperOrder, ack_of, report_of
from vanta.adapters.brokers.paper.settings import PaperSettings

__all__ = ["PaperBroker", "PaperOrder", "PaperSettings", "ack_of", "report_of"]
