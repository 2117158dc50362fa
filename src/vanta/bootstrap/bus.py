"""The message bus the delivery workers use: in-process (one process, embedded profile) or
NATS JetStream (relay and consumers as separate processes)."""

from __future__ import annotations

from vanta.application.ports.bus import Bus


def in_process_bus() -> Bus:
    """A bus that lives in this process: what it holds is lost on exit (the outbox is not)."""
    from vanta.adapters.bus.inprocess import InProcessBus
    return InProcessBus()


async def connect_nats(url: str, stream: str) -> Bus:
    """A connected JetStream bus (the stream is created or updated); nats-py is imported
    only here, on first use."""
    from vanta.adapters.bus.nats_jetstream import JetStreamConfig, NatsJetStreamBus
    return await NatsJetStreamBus.connect(JetStreamConfig(url=url, stream=stream))
