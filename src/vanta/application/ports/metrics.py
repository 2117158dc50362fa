"""The metrics the application records. The Prometheus adapter
(:mod:`vanta.adapters.metrics`) maps them to the spec's names; the default records nothing."""

from __future__ import annotations

from typing import Protocol


class Metrics(Protocol):
    def record_attempt(self, outcome: str, latency_ms: int, vault_id: str = "",
                       follower_id: str = "") -> None:
        """One delivery attempt and its outcome (ack, retry, dlq, failed, ...), of a child
        of ``vault_id`` for ``follower_id`` (error rates and retries are kept per both)."""
        ...

    def record_ack(self, order_to_ack_ms: float) -> None:
        """A child acknowledged: time since its manager order was accepted."""
        ...

    def record_dead_letter(self) -> None:
        """A child parked in the dead-letter queue without an attempt (e.g. disabled endpoint)."""
        ...

    def record_broker_submit(self, ok: bool) -> None: ...


class NoMetrics:
    def record_attempt(self, outcome: str, latency_ms: int, vault_id: str = "",
                       follower_id: str = "") -> None:
        pass

    def record_ack(self, order_to_ack_ms: float) -> None:
        pass

    def record_dead_letter(self) -> None:
        pass

    def record_broker_submit(self, ok: bool) -> None:
        pass


NO_METRICS = NoMetrics()
