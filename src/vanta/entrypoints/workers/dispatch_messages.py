"""What a ``mirror.dispatch`` message carries: the leases of outbox rows to deliver.

The relay publishes one message per chunk of a claimed batch (up to ``CHUNK`` rows), so the
bus costs one publish, one delivery and one ack per chunk instead of per child; de-duplication
stays per child, by each row's lease. A chunk's message id is derived from its rows' leases,
so a retried publish of the same chunk is dropped by the bus. One-row messages of the earlier
shape (``{"outbox_id", "fo_id", "lease", "until"}``) are still read, so messages queued before
an upgrade are delivered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from vanta.application.ports.delivery import OutboxLease
from vanta.application.ports.records_orders import OutboxRecord

CHUNK = 64  # rows per message: about the consumer's batch


def message_id(row: OutboxRecord) -> str:
    """One message id per lease of a row: ``fo_id:attempts``."""
    return f"{row.payload['fo_id']}:{row.attempts}"


def _lease(row: OutboxRecord, until: datetime | None = None) -> list[Any]:
    """``[id, fo_id, number, until]``, plus the claim's own expiry when the relay hands the
    lease over to ``until`` after publishing (a consumer may take it before or after)."""
    assert row.locked_until is not None  # a claimed row is leased
    if until is None or until == row.locked_until:
        return [row.id, row.payload["fo_id"], row.attempts, row.locked_until.isoformat()]
    return [row.id, row.payload["fo_id"], row.attempts, until.isoformat(),
            row.locked_until.isoformat()]


def encode(row: OutboxRecord) -> bytes:
    """A message for one row (the earlier shape, still read)."""
    assert row.locked_until is not None
    return json.dumps({"outbox_id": row.id, "fo_id": row.payload["fo_id"],
                       "lease": row.attempts, "until": row.locked_until.isoformat()},
                      separators=(",", ":")).encode()


def encode_batch(rows: Sequence[OutboxRecord],
                 until: datetime | None = None) -> tuple[bytes, str]:
    """One message for several rows, and its id: the same rows under the same leases give
    the same id (a retried publish is a duplicate), a new lease of any row a new one.
    ``until``: the expiry the leases are handed over to once the message is stored."""
    if len(rows) == 1 and until is None:
        return encode(rows[0]), message_id(rows[0])
    digest = hashlib.sha256("|".join(message_id(r) for r in rows).encode()).hexdigest()[:32]
    return json.dumps({"leases": [_lease(r, until) for r in rows]},
                      separators=(",", ":")).encode(), f"b:{digest}"


SPREAD = 4  # a claimed batch goes out as at least this many messages when it has the rows
MIN_CHUNK = 8


def chunks(rows: Sequence[OutboxRecord], size: int = CHUNK) -> Iterator[Sequence[OutboxRecord]]:
    """Up to ``size`` rows a message, but a mid-sized batch still makes several messages, so
    that several dispatch workers share it."""
    step = max(1, min(size, max(MIN_CHUNK, -(-len(rows) // SPREAD))))
    for i in range(0, len(rows), step):
        yield rows[i:i + step]


def _one(outbox_id: Any, lease: Any, until: Any, claimed: Any = None) -> OutboxLease:
    return OutboxLease(int(outbox_id), int(lease) if lease is not None else None,
                       datetime.fromisoformat(until) if until else None,
                       datetime.fromisoformat(claimed) if claimed else None)


def decode(data: bytes) -> list[OutboxLease]:
    """The leases a message names; raises ValueError, KeyError or TypeError if malformed."""
    body: Mapping[str, Any] = json.loads(data)
    if "leases" in body:
        out = [_one(i, n, *rest) for i, _fo, n, *rest in body["leases"]]
        if not out:
            raise ValueError("a dispatch message names no lease")
        return out
    return [_one(body["outbox_id"], body.get("lease"), body.get("until"))]
