"""Which NATS server a disconnected client tries next: never the same dead one forever."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from vanta.adapters.bus.nats_jetstream import JetStreamConfig, NatsJetStreamBus


@dataclass
class Srv:
    uri: object
    reconnects: int


def _pool(*counts: int) -> list[Srv]:
    return [Srv(urlparse(f"nats://127.0.0.1:{4222 + i}"), n) for i, n in enumerate(counts)]


def test_a_failed_server_is_not_tried_again_before_the_others() -> None:
    bus = NatsJetStreamBus(JetStreamConfig())
    dead_first = _pool(1, 0, 0)  # the first of the pool refused once already
    chosen, _ = bus._next_server(dead_first, {})
    assert chosen is dead_first[1]


def test_every_server_is_tried_in_turn_until_one_answers() -> None:
    bus = NatsJetStreamBus(JetStreamConfig())
    pool = _pool(0, 0, 0)
    tried = []
    for _ in range(6):  # all three dead: each refuses, twice round
        chosen, _ = bus._next_server(pool, {})
        tried.append(pool.index(chosen))
        chosen.reconnects += 1
    assert sorted(tried[:3]) == [0, 1, 2] and sorted(tried[3:]) == [0, 1, 2]


def test_the_wait_grows_only_once_every_server_failed() -> None:
    cfg = JetStreamConfig(reconnect_min_s=0.25, reconnect_max_s=5.0)
    bus = NatsJetStreamBus(cfg)
    _, first_round = bus._next_server(_pool(3, 0, 2), {})
    _, later_round = bus._next_server(_pool(3, 2, 2), {})
    assert first_round <= 0.25 * 1.2
    assert later_round >= 0.25 * 4 * 0.8
