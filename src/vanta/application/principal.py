"""The authenticated caller, as seen by the application layer (no framework imports)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL_SCOPES", "PLATFORM_SCOPES", "ROLE_SCOPES", "Principal", "effective_scopes"]

ALL_SCOPES: tuple[str, ...] = (
    "vault:read",
    "mirror:manage",
    "orders:read",
    "follower:manage",
    "billing:read",
    "audit:read",
    "users:manage",
    "vault:manage",  # creating and changing vaults: the owner's alone
)


# Not a tenant's to hold: instrument rules apply to every tenant. Only operator tokens
# (`vanta token --scope platform:admin`) carry it.
PLATFORM_SCOPES: tuple[str, ...] = ("platform:admin",)

# RBAC: what each tenant role may ever do. A token's own scopes can narrow this, never widen
# it. The follower role is further narrowed to its one follower (ABAC, see Principal).
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": frozenset(ALL_SCOPES),
    "ops": frozenset({"vault:read", "mirror:manage", "orders:read", "follower:manage"}),
    "auditor": frozenset({"vault:read", "orders:read", "audit:read", "billing:read"}),
    "follower": frozenset({"vault:read", "orders:read"}),
}


def effective_scopes(token_scopes: frozenset[str], roles: frozenset[str]) -> frozenset[str]:
    """Machine clients (no roles) get their token's scopes. With roles, the token may carry
    fewer scopes than its roles allow but never more; no scope claim means the roles' set.
    Unknown roles grant nothing."""
    if not roles:
        return token_scopes
    allowed = frozenset().union(*(ROLE_SCOPES.get(r, frozenset()) for r in roles))
    return (token_scopes & allowed) if token_scopes else allowed


@dataclass(frozen=True)
class Principal:
    """A verified identity: who (subject), for which tenant, and with which grants."""

    subject: str
    tenant_id: str
    scopes: frozenset[str]
    roles: frozenset[str] = frozenset()
    follower_id: str | None = None  # ABAC: a follower's token sees only this follower
    vault_ids: frozenset[str] | None = None  # ABAC: None = every vault of the tenant

    def may_see_vault(self, vault_id: str) -> bool:
        return self.vault_ids is None or vault_id in self.vault_ids

    def may_see_follower(self, follower_id: str) -> bool:
        return self.follower_id is None or self.follower_id == follower_id

    def has_scope(self, scope: str) -> bool:
        """Whether the principal was granted ``scope`` (exact match)."""
        return scope in self.scopes
