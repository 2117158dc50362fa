"""The dispatch message format: chunks of leases, stable ids, the one-row shape still read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vanta.application.ports.delivery import OutboxLease
from vanta.application.ports.records_orders import OutboxRecord
from vanta.entrypoints.workers.dispatch_messages import chunks, decode, encode, encode_batch

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _row(i: int, attempts: int = 1) -> OutboxRecord:
    until = T0 + timedelta(seconds=i)
    return OutboxRecord(id=i, topic="mirror.dispatch", key=f"fo-{i}",
                        payload={"fo_id": f"fo-{i}"}, created_at=T0, available_at=T0,
                        locked_until=until, attempts=attempts, done_at=None)


def test_a_chunk_names_every_lease_and_its_id_follows_the_leases() -> None:
    rows = [_row(i) for i in range(1, 6)]
    data, mid = encode_batch(rows)
    assert decode(data) == [OutboxLease(r.id, r.attempts, r.locked_until) for r in rows]
    assert encode_batch(rows)[1] == mid  # a retried publish is the same message
    assert encode_batch([*rows[:4], _row(5, attempts=2)])[1] != mid  # a new lease, a new one


def test_one_row_keeps_the_earlier_shape() -> None:
    row = _row(7, attempts=3)
    data, mid = encode_batch([row])
    assert data == encode(row) and mid == "fo-7:3"
    assert decode(data) == [OutboxLease(7, 3, row.locked_until)]


def test_chunks_split_a_batch_so_several_workers_share_it() -> None:
    rows = [_row(i) for i in range(256)]
    assert [len(c) for c in chunks(rows)] == [64] * 4
    assert [len(c) for c in chunks(rows[:50])] == [13, 13, 13, 11]
    assert [len(c) for c in chunks(rows[:3])] == [3]
    assert [r.id for c in chunks(rows[:100]) for r in c] == list(range(100))


@pytest.mark.parametrize("data", [b"{}", b'{"leases": []}', b"[1]", b'{"leases": [[1]]}'])
def test_malformed_messages_raise(data: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode(data)
