"""Through the API with the OpenTelemetry SDK (in-memory exporter): the request's span is the
root of the order's trace, the broker call of a bridged follower is a span of that trace, and
the trade log records the fills and the confirmation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.api.conftest import Api
from tests.api.test_bridged import bridged, order, settle
from tests.fakes.journal import RecordingJournal
from vanta.adapters.telemetry import OtelTracer, otlp_provider
from vanta.application import observability, tracing
from vanta.application.bridged import confirm_fills
from vanta.application.ports.journal import NO_JOURNAL
from vanta.application.ports.tracer import NOOP_TRACER


@pytest.fixture
def exporter(api: Api) -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    tracer = OtelTracer(otlp_provider("test", processor=SimpleSpanProcessor(exp)))
    tracing.install(tracer)
    api.container.dispatcher.tracer = tracer
    yield exp
    tracing.install(NOOP_TRACER)
    api.container.dispatcher.tracer = NOOP_TRACER


async def test_a_broker_call_is_a_span_of_the_order_trace(
        api: Api, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = RecordingJournal()
    api.container.dispatcher.journal = journal
    observability.install(journal)
    # the helper's confirmer pass is given the dispatcher's journal, as the workers do
    monkeypatch.setattr("tests.api.test_bridged.confirm_fills",
                        lambda uow, brokers: confirm_fills(uow, brokers, journal=journal))
    try:
        await bridged(api, scale="0.5")
        fo = (await order(api, "M-1"))["children"][0]["fo_id"]
        assert (await settle(api, fo))["state"] == "confirmed"
    finally:
        observability.install(NO_JOURNAL)
        api.container.dispatcher.journal = NO_JOURNAL
    spans = exporter.get_finished_spans()
    [root] = [s for s in spans if s.name == "POST /v1/manager-orders"]
    assert root.parent is None
    trace = [s for s in spans if s.context.trace_id == root.context.trace_id]
    names = {s.name for s in trace}
    assert {"mirror.ingest", "mirror.expand", "broker.submit"} <= names
    [submit] = [s for s in trace if s.name == "broker.submit"]
    [expand] = [s for s in trace if s.name == "mirror.expand"]
    assert submit.parent is not None and submit.parent.span_id == expand.context.span_id
    assert submit.attributes is not None and submit.attributes["fo_id"] == fo
    fills = [t for t in journal.trades if t["event"] == "fill" and t["fo_id"] == fo]
    assert fills and sum(int(f["qty"]) for f in fills) == 20
    assert journal.moves(fo)[-1] == ("ack", "confirmed")
