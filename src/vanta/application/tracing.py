"""The process's tracer, for the use cases that run far from the composition root (ingest,
expansion, the relay). The composition root installs it once per process (OpenTelemetry's own
provider is process-wide too); until then it is the no-op tracer."""

from __future__ import annotations

from vanta.application.ports.tracer import NOOP_TRACER, Tracer

__all__ = ["current", "install"]

_tracer: list[Tracer] = [NOOP_TRACER]


def install(tracer: Tracer) -> None:
    _tracer[0] = tracer


def current() -> Tracer:
    return _tracer[0]
