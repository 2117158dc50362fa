"""The authenticated caller, as seen by the application layer (no framework imports)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL_SCOPES", "Principal"]

ALL_SCOPES: tuple[str, ...] = (
    "vault:read",
    "mirror:manage",
    "orders:read",
    "follower:manage",
    "billing:read",
    "audit:read",
)


@dataclass(frozen=True)
class Principal:
    """A verified identity: who (subject), for which tenant, and with which grants."""

    subject: str
    tenant_id: str
    scopes: frozenset[str]
    roles: frozenset[str] = frozenset()
    follower_id: str | None = None

    def has_scope(self, scope: str) -> bool:
        """Whether the principal was granted ``scope`` (exact match)."""
        return scope in self.scopes
