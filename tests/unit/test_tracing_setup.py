"""Tracing is on exactly when an OTLP endpoint is configured (and the SDK not disabled):
otherwise the process gets the no-op tracer; the service name comes from OTEL_SERVICE_NAME,
else from the command."""

from __future__ import annotations

from vanta.adapters.telemetry import OtelTracer
from vanta.application.ports.tracer import NOOP_TRACER
from vanta.bootstrap.telemetry import tracer_from_env


def test_no_endpoint_means_the_no_op_tracer() -> None:
    assert tracer_from_env("vanta", {}) is NOOP_TRACER
    assert tracer_from_env("vanta", {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is NOOP_TRACER
    assert tracer_from_env("vanta", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                     "OTEL_SDK_DISABLED": "true"}) is NOOP_TRACER


def test_an_endpoint_turns_the_exporter_on_under_the_service_name() -> None:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        t = tracer_from_env("vanta-relay", {var: "http://127.0.0.1:9"})
        assert isinstance(t, OtelTracer) and t.enabled
        assert t.provider.resource.attributes["service.name"] == "vanta-relay"
        t.provider.shutdown()
    named = tracer_from_env("vanta", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                      "OTEL_SERVICE_NAME": "api-eu"})
    assert isinstance(named, OtelTracer)
    assert named.provider.resource.attributes["service.name"] == "api-eu"
    named.provider.shutdown()
