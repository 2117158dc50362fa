"""Tracing for this process: OpenTelemetry with the OTLP exporter when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, the no-op
tracer otherwise (nothing is imported, no span is made). Installed once per process as the
application's tracer (:mod:`vanta.application.tracing`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from vanta.application import tracing
from vanta.application.ports.tracer import NOOP_TRACER, Tracer

__all__ = ["process_tracer", "shutdown_tracing", "tracer_from_env"]

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_made: list[Tracer] = []


def process_tracer(service: str = "vanta", env: Mapping[str, str] | None = None) -> Tracer:
    """The tracer of this process, made on the first call and installed for the use cases."""
    if _made:
        return _made[0]
    tracer = tracer_from_env(service, os.environ if env is None else env)
    _made.append(tracer)
    tracing.install(tracer)
    return tracer


def tracer_from_env(service: str, env: Mapping[str, str]) -> Tracer:
    """OpenTelemetry exporting to the configured OTLP endpoint, or the no-op tracer."""
    if not any(env.get(v) for v in _ENDPOINT_VARS) or env.get("OTEL_SDK_DISABLED") == "true":
        return NOOP_TRACER
    from vanta.adapters.telemetry import OtelTracer, otlp_provider
    return OtelTracer(otlp_provider(env.get("OTEL_SERVICE_NAME") or service))


def shutdown_tracing() -> None:
    """Export the spans still buffered (a process on its way out)."""
    for t in _made:
        flush = getattr(t, "shutdown", None)
        if flush is not None:
            flush()
