"""The dispatcher works through the ports it is given: metrics, tracer, sender; and the
composition root wires the adapters for each profile."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.api.conftest import Api
from tests.api.test_mirroring_api import FakeSender, add_follower, order
from vanta.adapters.metrics import PrometheusMetrics
from vanta.application.bridged import BrokerRegistry
from vanta.application.dispatch import Dispatcher
from vanta.application.ports.metrics import NO_METRICS
from vanta.bootstrap import build
from vanta.config import Settings


class RecordingMetrics:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def record_attempt(self, outcome: str, latency_ms: int, vault_id: str = "",
                       follower_id: str = "") -> None:
        self.calls.append(("attempt", outcome))

    def record_ack(self, order_to_ack_ms: float) -> None:
        self.calls.append(("ack", order_to_ack_ms >= 0))

    def record_dead_letter(self) -> None:
        self.calls.append(("dead_letter", None))

    def record_broker_submit(self, ok: bool) -> None:
        self.calls.append(("broker", ok))


class RecordingTracer:
    def __init__(self) -> None:
        self.spans: list[str] = []

    enabled = False

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None, *,
             parent: str | None = None) -> Iterator[None]:
        self.spans.append(name)
        yield

    def traceparent(self) -> str | None:
        return None


async def test_dispatcher_records_through_its_metrics_and_tracer_ports(api: Api) -> None:
    await add_follower(api)
    await order(api, "M-1")
    metrics, tracer = RecordingMetrics(), RecordingTracer()
    d = Dispatcher(uow_factory=api.container.uow, sender=FakeSender(),
                   secrets=api.container.secrets, metrics=metrics, tracer=tracer)
    assert await d.run_once() == 1
    assert metrics.calls == [("attempt", "ack"), ("ack", True)]
    assert tracer.spans == ["dispatch.batch"]


async def test_a_disabled_endpoint_dead_letters_through_the_metrics_port(api: Api) -> None:
    fid = await add_follower(api)
    async with api.container.uow() as uow:
        await uow.followers.update("tnt_a", fid, webhook_disabled_at=datetime.now(UTC),
                                   webhook_disabled_reason="410 Gone")
        await uow.commit()
    await order(api, "M-1")
    metrics = RecordingMetrics()
    sender = FakeSender()
    d = Dispatcher(uow_factory=api.container.uow, sender=sender,
                   secrets=api.container.secrets, metrics=metrics)
    await d.run_once()
    assert sender.sent == [] and metrics.calls == [("dead_letter", None)]


async def test_bootstrap_wires_prometheus_except_on_the_test_profile(tmp_path: Path) -> None:
    embedded = build(Settings(data_dir=tmp_path / "e"))
    test = build(Settings(data_dir=tmp_path / "t", profile="test"))
    try:
        assert isinstance(embedded.dispatcher.metrics, PrometheusMetrics)
        assert embedded.metrics is embedded.dispatcher.metrics
        assert isinstance(embedded.dispatcher.brokers, BrokerRegistry)
        assert test.dispatcher.metrics is NO_METRICS
    finally:
        await embedded.close()
        await test.close()
