"""Failover URLs: VANTA_NATS_URL lists a cluster's servers; a PostgreSQL URL lists hosts."""

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


def test_a_postgres_failover_url_keeps_every_host_for_the_outbox_listener() -> None:
    from sqlalchemy.engine import make_url

    from vanta.adapters.db.outbox_listener import asyncpg_dsn
    url = make_url("postgresql+asyncpg://postgres@/vanta?host=10.0.0.1:5432"
                   "&host=10.0.0.2:5433&target_session_attrs=read-write")
    assert asyncpg_dsn(url) == ("postgresql://postgres@10.0.0.1:5432,10.0.0.2:5433/vanta"
                                "?target_session_attrs=read-write")
    assert asyncpg_dsn(make_url("postgresql+asyncpg://u:pw@h:5/db")) == "postgresql://u:pw@h:5/db"
