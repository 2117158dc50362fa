"""Identity: who sent a request (bearer-token verification) and, with an OIDC provider, the
OAuth token requests the API forwards to it.

Implemented by ``vanta.adapters.identity.verifier.TokenVerifier`` (JWKS from the dev issuer
or the provider) and ``vanta.adapters.identity.token_exchange.OidcTokenExchange``; the
composition root picks them. The errors live here so that callers can catch them without
naming an adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

__all__ = ["InvalidToken", "TokenExchange", "TokenExchangeError", "TokenVerifier"]


class InvalidToken(Exception):
    """The bearer token was refused; ``reason`` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TokenExchangeError(Exception):
    """A token request failed.

    ``code`` is the server's OAuth ``error`` (``invalid_grant``, ``invalid_client``, …) or one
    of ours: ``discovery_failed``, ``network_error``, ``http_error`` (a non-OAuth error
    answer), ``invalid_response`` (a 200 without a usable token response).
    """

    def __init__(self, code: str, description: str = "", *, status: int | None = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.status = status


# what a verified token stands for: vanta.application.principal.Principal (a port imports
# only ports and the domain, so it is a parameter here)
PrincipalT_co = TypeVar("PrincipalT_co", covariant=True)


class TokenVerifier(Protocol[PrincipalT_co]):
    def verify(self, token: str) -> PrincipalT_co:
        """The token's principal; raises :class:`InvalidToken`. Never awaits anything."""
        ...

    async def averify(self, token: str) -> PrincipalT_co:
        """:meth:`verify`, refreshing the keys once for a token signed with an unknown key
        (rotation); raises :class:`InvalidToken`."""
        ...


class TokenExchange(Protocol):
    """OAuth 2.0 token requests (RFC 6749) at the provider's token endpoint; each raises
    :class:`TokenExchangeError`, or ValueError for an unusable argument."""

    async def exchange_code(self, client_id: str, client_secret: str, code: str,
                            redirect_uri: str, code_verifier: str | None = None
                            ) -> dict[str, Any]: ...

    async def client_credentials(self, client_id: str, client_secret: str,
                                 scope: str | Iterable[str] | None) -> dict[str, Any]: ...
