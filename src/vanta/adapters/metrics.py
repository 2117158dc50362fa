"""Prometheus metrics. The spec's dotted names map to Prometheus names as follows:

* ``mirror.dispatch.latency_ms`` → histogram ``mirror_dispatch_latency_ms``: manager order
  accepted → child acknowledged (P50/P95 via ``histogram_quantile``); per-attempt HTTP time is
  ``webhook_attempt_latency_ms``.
* ``mirror.error.rate`` → gauge ``mirror_error_rate{vault_id, follower_id}``: the share of
  attempts not acknowledged since the process started, per follower, per vault
  (``follower_id=""``) and overall (both ``""``). Over a window:
  ``rate(mirror_dispatch_attempts_total{outcome!="ack"}[5m]) / rate(...[5m])``.
* ``broker.submit.success_rate`` → gauge ``broker_submit_success_rate`` (and counter
  ``broker_submit_total{outcome}``).
* ``webhook.retry.count`` → counter ``webhook_retry_count{vault_id, follower_id}`` (exposed,
  as every Prometheus counter, with the ``_total`` suffix); ``webhook_retries_total`` is the
  same count without labels, kept for existing dashboards and rules.

Vault and follower ids are opaque identifiers, but they are ids: with
``VANTA_METRICS_ID_LABELS=false`` they are left empty (the endpoint is unauthenticated for
scrapers; keep it on a private network otherwise). At most ``MAX_FOLLOWER_SERIES`` followers
get series of their own per process; the rest share ``follower_id="_other"``.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000)
MAX_FOLLOWER_SERIES = 10_000

DISPATCH_LATENCY = Histogram("mirror_dispatch_latency_ms",
                             "Manager order accepted to child acknowledged, milliseconds",
                             buckets=_MS_BUCKETS)
ATTEMPT_LATENCY = Histogram("webhook_attempt_latency_ms", "One delivery attempt, milliseconds",
                            buckets=_MS_BUCKETS)
ATTEMPTS = Counter("mirror_dispatch_attempts", "Delivery attempts by outcome", ["outcome"])
ERROR_RATE = Gauge("mirror_error_rate",
                   "Share of delivery attempts not acknowledged since start, per vault and "
                   "follower (empty label: all)", ["vault_id", "follower_id"])
RETRY_COUNT = Counter("webhook_retry_count", "Delivery attempts scheduled for another try, "
                      "per vault and follower", ["vault_id", "follower_id"])
RETRIES = Counter("webhook_retries", "Delivery attempts scheduled for another try")
DEAD_LETTERS = Counter("mirror_dispatch_dead_letters", "Children parked in mirror_dispatch_dlx")
BROKER_SUBMITS = Counter("broker_submit", "Broker order submissions by outcome", ["outcome"])
BROKER_SUCCESS = Gauge("broker_submit_success_rate", "Share of broker submissions accepted")

RECONCILE_DRIFT = Gauge("reconcile_drift_bps",
                        "Largest follower drift of the vault's last reconciliation, bps of NAV",
                        ["vault_id"])
RECONCILE_FIXUPS = Counter("reconcile_fixups", "Fix-up orders dispatched by reconciliation")
RECONCILE_BLOCKED = Counter("reconcile_blocked_fixups",
                            "Fix-ups reconciliation could not send (with a recorded reason)")

_totals = {"broker": 0, "broker_ok": 0}
# (vault_id, follower_id) -> [attempts, errors]; ("", "") is every attempt
_rates: dict[tuple[str, str], list[int]] = {}


def _count(key: tuple[str, str], error: bool) -> None:
    n = _rates.get(key)
    if n is None:
        n = _rates[key] = [0, 0]
    n[0] += 1
    n[1] += error
    ERROR_RATE.labels(*key).set(n[1] / n[0])


def record_attempt(outcome: str, latency_ms: int, vault_id: str = "",
                   follower_id: str = "") -> None:
    ATTEMPTS.labels(outcome=outcome).inc()
    ATTEMPT_LATENCY.observe(latency_ms)
    error = outcome != "ack"
    _count(("", ""), error)
    if vault_id:
        _count((vault_id, ""), error)
        if follower_id:
            if (vault_id, follower_id) not in _rates and len(_rates) > MAX_FOLLOWER_SERIES:
                follower_id = "_other"
            _count((vault_id, follower_id), error)
    if outcome == "retry":
        RETRIES.inc()
        RETRY_COUNT.labels(vault_id, follower_id).inc()
    if outcome == "dlq":
        DEAD_LETTERS.inc()


def record_ack(order_to_ack_ms: float) -> None:
    DISPATCH_LATENCY.observe(order_to_ack_ms)


def record_broker_submit(ok: bool) -> None:
    BROKER_SUBMITS.labels(outcome="accepted" if ok else "failed").inc()
    _totals["broker"] += 1
    _totals["broker_ok"] += int(ok)
    BROKER_SUCCESS.set(_totals["broker_ok"] / _totals["broker"])


def record_dead_letter() -> None:
    DEAD_LETTERS.inc()


class PrometheusMetrics:
    """The application's :class:`~vanta.application.ports.metrics.Metrics` port, recorded in
    this process's Prometheus registry (the module-level metrics above)."""

    def __init__(self, *, id_labels: bool = True) -> None:
        self.id_labels = id_labels

    def record_attempt(self, outcome: str, latency_ms: int, vault_id: str = "",
                       follower_id: str = "") -> None:
        if self.id_labels:
            record_attempt(outcome, latency_ms, vault_id, follower_id)
        else:
            record_attempt(outcome, latency_ms)

    def record_ack(self, order_to_ack_ms: float) -> None:
        record_ack(order_to_ack_ms)

    def record_dead_letter(self) -> None:
        record_dead_letter()

    def record_broker_submit(self, ok: bool) -> None:
        record_broker_submit(ok)


class PrometheusReconcileMetrics:
    """The :class:`~vanta.application.ports.reconciliation.ReconcileMetrics` port."""

    def record_reconcile(self, vault_id: str, max_drift_bps: float, fixups: int,
                         blocked: int) -> None:
        RECONCILE_DRIFT.labels(vault_id=vault_id).set(max_drift_bps)
        RECONCILE_FIXUPS.inc(fixups)
        RECONCILE_BLOCKED.inc(blocked)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


def metric_names() -> set[str]:
    """Every sample name this process can expose (``_bucket``, ``_total``… included)."""
    from prometheus_client import REGISTRY
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                                 "_created")}
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + sfx for sfx in suffixes.get(family.type, ()))
        names.update(s.name for s in family.samples)
    return names
