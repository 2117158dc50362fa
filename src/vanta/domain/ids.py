"""Strongly named ids. Child order ids are derived, never random, so a retry or a replay
of the same manager order can never produce a second order at a broker or a receiver."""

from __future__ import annotations

import hashlib
import uuid
from typing import NewType

TenantId = NewType("TenantId", str)
UserId = NewType("UserId", str)
VaultId = NewType("VaultId", str)
FollowerId = NewType("FollowerId", str)
ManagerOrderId = NewType("ManagerOrderId", str)
ChildOrderId = NewType("ChildOrderId", str)
EventId = NewType("EventId", str)

# Fixed namespace: changing it would change every derived id, so it is part of the format.
VANTA_NAMESPACE = uuid.UUID("5b0c2f0e-7a1d-4d3c-9a51-2a6f4e8b1c00")


def new_id() -> str:
    return str(uuid.uuid4())


def manager_order_id(vault_id: str, client_order_id: str) -> ManagerOrderId:
    """The id of a manager order is a function of its vault and the id its source gave it,
    so ingesting the same order twice names the same row."""
    return ManagerOrderId(str(uuid.uuid5(VANTA_NAMESPACE, f"mo:{vault_id}:{client_order_id}")))


_NS_BYTES = VANTA_NAMESPACE.bytes


def child_order_id(mo_id: str, follower_id: str) -> ChildOrderId:
    """Derived from (manager order, follower): also the broker client order id and the
    Standard Webhooks ``webhook-id``. Exactly ``uuid5(VANTA_NAMESPACE, "fo:<mo>:<f>")``,
    computed without building UUID objects because a fan-out derives one per follower."""
    b = bytearray(hashlib.sha1(_NS_BYTES + f"fo:{mo_id}:{follower_id}".encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return ChildOrderId(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
