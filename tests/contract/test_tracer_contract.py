"""The tracer contract (:class:`~vanta.application.ports.tracer.Tracer`), run on the
recording fake (``tests/fakes/tracer.py``), the no-op default and the OpenTelemetry adapter
(SDK, in-memory exporter): a span is a context manager that runs its body once, nests, and
lets every exception through unchanged; an enabled tracer renders the current span as a W3C
``traceparent``, and a span started under a remote ``traceparent`` joins that trace."""

from __future__ import annotations

import asyncio
import re

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.fakes.tracer import RecordingTracer
from vanta.adapters.telemetry import OtelTracer, otlp_provider
from vanta.application.ports.tracer import NOOP_TRACER, Tracer, trace_id_of

W3C = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
REMOTE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(params=["fake", "noop", "otel"])
def tracer(request: pytest.FixtureRequest) -> Tracer:
    if request.param == "otel":
        return OtelTracer(otlp_provider("contract",
                                        processor=SimpleSpanProcessor(InMemorySpanExporter())))
    return RecordingTracer() if request.param == "fake" else NOOP_TRACER


def test_traceparent_names_the_current_span_only_when_enabled(tracer: Tracer) -> None:
    assert tracer.traceparent() is None  # outside any span
    with tracer.span("outer"):
        outer = tracer.traceparent()
        with tracer.span("inner"):
            inner = tracer.traceparent()
    if not tracer.enabled:
        assert outer is None and inner is None
        return
    assert outer is not None and inner is not None
    assert W3C.match(outer) and W3C.match(inner)
    assert trace_id_of(outer) == trace_id_of(inner) and outer != inner


def test_a_remote_parent_puts_the_span_in_its_trace(tracer: Tracer) -> None:
    with tracer.span("outer"), tracer.span("hop", {"fo_id": "x"}, parent=REMOTE):
        tp = tracer.traceparent()
    if tracer.enabled:
        assert tp is not None and trace_id_of(tp) == trace_id_of(REMOTE)
        assert tp.split("-")[2] != REMOTE.split("-")[2]  # a span of its own


def test_a_span_runs_its_body_once(tracer: Tracer) -> None:
    ran = []
    with tracer.span("dispatch.batch", {"rows": 3}):
        ran.append(1)
    with tracer.span("no.attributes"):
        ran.append(2)
    assert ran == [1, 2]


def test_spans_nest_and_exceptions_pass_through(tracer: Tracer) -> None:
    error = ValueError("boom")
    with pytest.raises(ValueError) as e, tracer.span("outer"), tracer.span("inner", {"k": "v"}):
        raise error
    assert e.value is error


async def test_spans_work_across_awaits_and_tasks(tracer: Tracer) -> None:
    async def job(n: int) -> int:
        with tracer.span("job", {"n": n}):
            await asyncio.sleep(0)
            return n

    with tracer.span("batch"):
        assert await asyncio.gather(*(job(i) for i in range(3))) == [0, 1, 2]


async def test_the_fake_records_names_attributes_parents_and_errors() -> None:
    t = RecordingTracer()

    async def job(n: int) -> None:
        with t.span("job", {"n": n}):
            await asyncio.sleep(0)

    with t.span("batch"):
        await asyncio.gather(job(1), job(2))
    with pytest.raises(KeyError), t.span("failing"):
        raise KeyError("x")
    assert t.names() == ["job", "job", "batch", "failing"]
    [batch] = t.named("batch")
    assert sorted(s.attributes["n"] for s in batch.children) == [1, 2]
    assert all(s.parent is batch for s in t.named("job"))
    assert isinstance(t.named("failing")[0].error, KeyError) and batch.error is None
