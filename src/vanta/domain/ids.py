"""Strongly named ids. Child order ids are derived, never random, so a retry or a replay
of the same manager order can never produce a second order at a broker or a receiver."""

from __future__ import annotations

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


def child_order_id(mo_id: str, follower_id: str) -> ChildOrderId:
    """Derived from (manager order, follower): also the broker client order id and the
    Standard Webhooks ``webhook-id``."""
    return ChildOrderId(str(uuid.uuid5(VANTA_NAMESPACE, f"fo:{mo_id}:{follower_id}")))
