"""VANTA_NATS_URL may list a cluster's servers; the bus connects to any of them."""

from __future__ import annotations

import pytest

from vanta.adapters.bus.nats_jetstream import server_urls
from vanta.config import Settings


def test_a_comma_separated_url_is_a_server_list() -> None:
    assert server_urls("nats://a:4222, nats://b:4222,,nats://c:4222 ") == \
        ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
    assert server_urls("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]


def test_stream_replicas_default_to_the_cluster_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VANTA_NATS_REPLICAS", raising=False)
    assert Settings().nats_replicas == 0  # 0: one copy per node, at most 3
    monkeypatch.setenv("VANTA_NATS_REPLICAS", "3")
    assert Settings().nats_replicas == 3
