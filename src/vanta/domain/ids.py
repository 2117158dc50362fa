"""Strongly named ids. Child order ids are derived, never random, so a retry or a replay
of the same manager order can never produce a second order at a broker or a receiver."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
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
_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}


def child_order_id(mo_id: str, follower_id: str) -> ChildOrderId:
    """Derived from (manager order, follower): also the broker client order id and the
    Standard Webhooks ``webhook-id``. Exactly ``uuid5(VANTA_NAMESPACE, "fo:<mo>:<f>")``."""
    return child_order_ids(mo_id)(follower_id)


def child_order_ids(mo_id: str) -> Callable[[str], ChildOrderId]:
    """The child-id function of one manager order. A fan-out derives one id per follower, so
    the hash of the common prefix is computed once and no UUID objects are built."""
    prefix = hashlib.sha1(_NS_BYTES + f"fo:{mo_id}:".encode())

    def derive(follower_id: str) -> ChildOrderId:
        h = prefix.copy()
        h.update(follower_id.encode())
        x = h.hexdigest()
        # version nibble 5 and the RFC 4122 variant bits, set on the hex digits directly
        return ChildOrderId(f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-"
                            f"{x[20:32]}")

    return derive


def dag_id_for(mo_id: str) -> str:
    """The id of a manager order's DAG (the order, its children, attempts, fills and audit
    events): derived from the order's id, so every reader and every webhook names the same
    DAG without it being stored. Exactly ``"dag_" + uuid5(VANTA_NAMESPACE, "dag:<mo>")``."""
    return "dag_" + str(uuid.uuid5(VANTA_NAMESPACE, f"dag:{mo_id}"))
