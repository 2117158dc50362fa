"""The message bus the delivery workers use: in-process (one process, embedded profile) or
NATS JetStream (relay and consumers as separate processes)."""

from __future__ import annotations

from vanta.application.ports.bus import Bus


def in_process_bus() -> Bus:
    """A bus that lives in this process: what it holds is lost on exit (the outbox is not)."""
    from vanta.adapters.bus.inprocess import InProcessBus
    return InProcessBus()


async def connect_nats(url: str, stream: str, replicas: int | None = None) -> Bus:
    """A connected JetStream bus (the stream is created or updated); nats-py is imported
    only here, on first use. ``url`` may list a cluster's servers, comma-separated.
    ``replicas``: copies of the stream; None reads ``VANTA_NATS_REPLICAS`` (0, the default:
    one per cluster node, at most 3)."""
    from vanta.adapters.bus.nats_jetstream import JetStreamConfig, NatsJetStreamBus
    if replicas is None:
        from vanta.config import Settings
        replicas = Settings().nats_replicas
    return await NatsJetStreamBus.connect(JetStreamConfig(url=url, stream=stream,
                                                          replicas=replicas))
