"""One trace across processes: ``vanta serve --no-dispatcher``, ``vanta worker relay`` and
``vanta worker dispatch --bus nats`` (a private nats-server), each exporting OTLP/HTTP to a
small collector in this test (an aiohttp server decoding ``ExportTraceServiceRequest``
protobufs), which also plays the follower's webhook endpoint.

The manager order's API span is the root; the relay's and the dispatcher's spans join its
trace, and the follower receives a ``traceparent`` naming the dispatcher's delivery span."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.test_delivery_faults import VANTA, Processes, _env, _run, _wait_for_file
from tests.http_helpers import add_idempotency_key_sync
from tests.integration.test_relay_consumer import (
    PrivateNats,
    _free_port,
    private_nats,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class SpanSeen:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


@dataclass
class Collector:
    port: int = 0
    spans: list[SpanSeen] = field(default_factory=list)
    hooks: list[dict[str, str]] = field(default_factory=list)  # headers of webhooks received

    async def traces(self, request: web.Request) -> web.Response:
        req = ExportTraceServiceRequest()
        req.ParseFromString(await request.read())
        for rs in req.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes
                            if a.key == "service.name"), "")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(SpanSeen(service, s.name, s.trace_id.hex(),
                                               s.span_id.hex(), s.parent_span_id.hex()))
        return web.Response(content_type="application/x-protobuf",
                            body=b"")  # an empty ExportTraceServiceResponse

    async def hook(self, request: web.Request) -> web.Response:
        await request.read()
        self.hooks.append(dict(request.headers))
        return web.Response(text="ok")


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector(port=_free_port())
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/traces", c.traces)
    app.router.add_post("/hooks/{key}", c.hook)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", c.port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield c
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def test_relay_and_dispatcher_join_the_trace_that_starts_at_the_api(
        tmp_path: Path, procs: Processes, collector: Collector,
        private_nats: PrivateNats) -> None:  # noqa: F811
    base = _env(tmp_path, VANTA_NATS_URL=private_nats.url,
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.port}",
                OTEL_BSP_SCHEDULE_DELAY="100")
    base.pop("OTEL_SERVICE_NAME", None)  # each command names itself
    _run([*VANTA, "db", "upgrade"], base)
    _run([*VANTA, "tenant-create", "tnt_t"], base)
    _run([*VANTA, "vault-create", "V1", "--tenant", "tnt_t"], base)
    token = _run([*VANTA, "token", "--tenant", "tnt_t"], base).strip()
    port_file = tmp_path / "api.port"
    api = procs.start("api", [*VANTA, "serve", "--no-dispatcher", "--port", "0",
                              "--port-file", str(port_file)], base)
    procs.start("relay", [*VANTA, "worker", "relay", "--poll-seconds", "0.05"], base)
    procs.start("dispatch", [*VANTA, "worker", "dispatch", "--bus", "nats"], base)
    http = httpx.Client(base_url=f"http://127.0.0.1:{_wait_for_file(port_file, api, 60)}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30,
                        event_hooks={"request": [add_idempotency_key_sync]})
    r = http.post("/v1/vaults/V1/followers", json={
        "scale": "1", "webhook": {"url": f"http://127.0.0.1:{collector.port}/hooks/a"}})
    assert r.status_code == 201, r.text
    r = http.post("/v1/manager-orders", json={"vault_id": "V1", "symbol": "AAPL",
                                              "side": "buy", "qty": "10", "ref_price": "100"})
    assert r.status_code == 201, r.text

    def by(service: str, name: str) -> list[SpanSeen]:
        return [s for s in collector.spans if s.service == service and s.name == name]

    # each process exports on its own schedule: the relay's span may come after the
    # dispatcher's, so wait for every span the assertions below name
    expected = [("vanta-api", "POST /v1/manager-orders"), ("vanta-api", "mirror.expand"),
                ("vanta-relay", "outbox.relay"), ("vanta-dispatch", "mirror.dispatch.receive"),
                ("vanta-dispatch", "webhook.deliver")]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            collector.hooks and all(by(*e) for e in expected)):
        time.sleep(0.1)
    [root] = by("vanta-api", "POST /v1/manager-orders")
    assert root.parent_id == ""  # the trace starts at the API
    trace = [s for s in collector.spans if s.trace_id == root.trace_id]
    ids = {s.span_id: s for s in trace}
    [expand] = [s for s in trace if s.name == "mirror.expand"]
    [relay] = [s for s in trace if s.name == "outbox.relay"]
    [received] = [s for s in trace if s.name == "mirror.dispatch.receive"]
    [deliver] = [s for s in trace if s.name == "webhook.deliver"]
    assert (relay.service, received.service, deliver.service) \
        == ("vanta-relay", "vanta-dispatch", "vanta-dispatch")
    assert relay.parent_id == expand.span_id  # from the outbox row
    assert received.parent_id == relay.span_id  # from the NATS headers
    assert deliver.parent_id == expand.span_id
    # every span of the trace hangs off the API's root span
    for s in trace:
        hop = s
        while hop.parent_id:
            hop = ids[hop.parent_id]
        assert hop == root, s
    [hook] = collector.hooks
    _, trace_id, parent, _ = hook["traceparent"].split("-")
    assert (trace_id, parent) == (root.trace_id, deliver.span_id)
