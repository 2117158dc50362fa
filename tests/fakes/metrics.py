"""A recording :class:`~vanta.application.ports.metrics.Metrics`.

Every call is kept in order as ``(method, args)``; the properties give the totals the
Prometheus adapter (:mod:`vanta.adapters.metrics`) exposes, with the same meaning (a ``dlq``
attempt and a ``record_dead_letter`` both count as a dead letter, a ``retry`` attempt counts
as a retry), so a test can assert either the calls or the figures. The contract suite
(``tests/contract/test_metrics_contract.py``) compares those figures with the Prometheus
registry's.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["RecordingMetrics"]


class RecordingMetrics:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def record_attempt(self, outcome: str, latency_ms: int, vault_id: str = "",
                       follower_id: str = "") -> None:
        self.calls.append(("record_attempt", (outcome, latency_ms, vault_id, follower_id)))

    def record_ack(self, order_to_ack_ms: float) -> None:
        self.calls.append(("record_ack", (order_to_ack_ms,)))

    def record_dead_letter(self) -> None:
        self.calls.append(("record_dead_letter", ()))

    def record_broker_submit(self, ok: bool) -> None:
        self.calls.append(("record_broker_submit", (ok,)))

    # -- figures ----------------------------------------------------------------------------

    def _args(self, method: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == method]

    @property
    def attempts(self) -> Counter[str]:
        """Attempts by outcome."""
        return Counter(args[0] for args in self._args("record_attempt"))

    @property
    def attempt_latencies_ms(self) -> list[int]:
        return [args[1] for args in self._args("record_attempt")]

    def error_rate(self, vault_id: str = "", follower_id: str = "") -> float | None:
        """Share of non-ack attempts, of one vault (and follower), or of all when empty."""
        outcomes = [a[0] for a in self._args("record_attempt")
                    if (not vault_id or a[2] == vault_id)
                    and (not follower_id or a[3] == follower_id)]
        return None if not outcomes else sum(o != "ack" for o in outcomes) / len(outcomes)

    def retries_of(self, vault_id: str, follower_id: str) -> int:
        return sum(1 for a in self._args("record_attempt")
                   if a[0] == "retry" and a[2] == vault_id and a[3] == follower_id)

    @property
    def ack_latencies_ms(self) -> list[float]:
        return [ms for (ms,) in self._args("record_ack")]

    @property
    def retries(self) -> int:
        return self.attempts["retry"]

    @property
    def dead_letters(self) -> int:
        return self.attempts["dlq"] + len(self._args("record_dead_letter"))

    @property
    def broker_submits(self) -> Counter[bool]:
        return Counter(ok for (ok,) in self._args("record_broker_submit"))


class RecordingReconcileMetrics:
    """A recording :class:`~vanta.application.ports.reconciliation.ReconcileMetrics`: the
    figures the Prometheus adapter exposes (last drift per vault, fix-ups, blocked)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, float, int, int]] = []

    def record_reconcile(self, vault_id: str, max_drift_bps: float, fixups: int,
                         blocked: int) -> None:
        self.runs.append((vault_id, max_drift_bps, fixups, blocked))

    @property
    def drift_bps(self) -> dict[str, float]:
        return {vault: drift for vault, drift, _, _ in self.runs}

    @property
    def fixups(self) -> int:
        return sum(r[2] for r in self.runs)

    @property
    def blocked(self) -> int:
        return sum(r[3] for r in self.runs)
