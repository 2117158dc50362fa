"""Bearer-token authentication and scope checks, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vanta.adapters.identity.verifier import InvalidToken
from vanta.application.principal import Principal
from vanta.entrypoints.api.problems import ApiProblem

_bearer = HTTPBearer(auto_error=False, description="JWT from the configured issuer")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vanta"'}


async def current_principal(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    return await authenticate(request, creds)


async def authenticate(request: Request, creds: HTTPAuthorizationCredentials | None
                       ) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise ApiProblem(401, "unauthenticated", "a bearer token is required", headers=_CHALLENGE)
    verified = request.scope.get("state", {}).get("verified_token")
    if verified is not None and verified[0] == creds.credentials:
        request.state.principal = verified[1]
        return verified[1]  # type: ignore[no-any-return]
    verifier = request.app.state.container.verifier
    try:
        # averify: a token signed with a just-rotated key is re-checked after one JWKS refresh
        principal: Principal = await verifier.averify(creds.credentials)
    except InvalidToken as e:
        raise ApiProblem(401, "invalid_token", f"the token was refused ({e.reason})",
                         headers=_CHALLENGE) from None
    request.state.principal = principal  # for the request log and audit
    return principal


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    # One dependency level over the bearer scheme (not require -> current_principal -> bearer):
    # FastAPI's per-level bookkeeping costs more per request than the cached token check.
    async def dep(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        principal = await authenticate(request, creds)
        if not principal.has_scope(scope):
            raise ApiProblem(403, "insufficient_scope", f"this call needs the '{scope}' scope",
                             required_scope=scope)
        return principal

    return dep
