"""OpenTelemetry behind the application's Tracer port: spans through the SDK's tracer
provider, context carried between processes as W3C ``traceparent`` header values.

:func:`otlp_provider` builds the provider the processes use: a batch span processor exporting
OTLP over HTTP (protobuf) to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter reads the standard
``OTEL_*`` variables itself, and the resource reads ``OTEL_SERVICE_NAME``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["OtelTracer", "otlp_provider"]

_PROPAGATOR = TraceContextTextMapPropagator()


def _attr(value: Any) -> Any:
    return value if isinstance(value, str | bool | int | float) else str(value)


class OtelTracer:
    enabled = True

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("vanta")

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None, *,
             parent: str | None = None) -> Iterator[None]:
        ctx = _PROPAGATOR.extract({"traceparent": parent}) if parent else None
        attrs = {k: _attr(v) for k, v in (attributes or {}).items() if v is not None}
        with self._tracer.start_as_current_span(name, context=ctx, attributes=attrs):
            yield

    def traceparent(self) -> str | None:
        span = trace.get_current_span()
        if not span.get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get("traceparent")

    def shutdown(self) -> None:
        """Export what is still buffered (on a process's way out)."""
        self.provider.force_flush()


def otlp_provider(service_name: str, *, processor: SpanProcessor | None = None
                  ) -> TracerProvider:
    """A provider exporting to the OTLP endpoint of the environment, or to ``processor``."""
    resource = Resource.create({"service.name": service_name})
    provider = TracerProvider(resource=resource)
    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        processor = BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(processor)
    return provider
