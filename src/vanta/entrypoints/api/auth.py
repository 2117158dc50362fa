"""Bearer-token authentication and scope checks, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.telemetry import get_telemetry_data
from starlette.responses import Response

from vanta.application.ports.identity import InvalidToken
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


def _check_scope(principal: Principal, scope: str) -> Principal:
    if not principal.has_scope(scope):
        raise ApiProblem(403, "insufficient_scope", f"this call needs the '{scope}' scope",
                         required_scope=scope)
    return principal


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    # One dependency level over the bearer scheme (not require -> current_principal -> bearer):
    # FastAPI's per-level bookkeeping costs more per request than the cached token check.
    async def dep(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        return _check_scope(await authenticate(request, creds), scope)

    return dep


def bearer_credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    """What the ``HTTPBearer(auto_error=False)`` dependency answers, without the dependency."""
    authorization = None
    for name, value in request.scope["headers"]:  # the first one, as Headers.get has it
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    scheme, _, credentials = (authorization or "").partition(" ")
    credentials = credentials.strip()
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


async def authorize(request: Request, scope: str) -> Principal:
    """``Depends(require(scope))`` as a plain call, for a hot route that takes only the
    request: the same 401/403 answers, without FastAPI solving two dependency levels per
    request. Declare the route with ``openapi_extra=BEARER_SECURITY`` so that its OpenAPI
    operation still names the bearer scheme."""
    return _check_scope(await authenticate(request, bearer_credentials(request)), scope)


# the operation's security requirement, as FastAPI derives it from ``Depends(_bearer)``
BEARER_SECURITY = {"security": [{_bearer.scheme_name: []}]}


class PlainRoute(APIRoute):
    """An :class:`APIRoute` for an endpoint ``async (request) -> Response`` that authorizes
    itself (:func:`authorize`): it is matched, documented (OpenAPI) and guarded by the
    exception handlers like any route, but called directly, without FastAPI's per-request
    parameter solving (nothing to solve: the request is the only parameter) and response
    serialisation (it returns a ready Response). ``route_class_override=PlainRoute``."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kw: Any) -> None:
        super().__init__(path, endpoint, **kw)
        d = self.dependant
        if (d.dependencies or d.path_params or d.query_params or d.header_params
                or d.cookie_params or d.body_params or d.request_param_name is None):
            raise TypeError(f"{path}: a PlainRoute endpoint takes only the Request")

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        name = self.dependant.request_param_name

        async def handler(request: Request) -> Response:
            telemetry = get_telemetry_data()
            if telemetry is not None:  # what FastAPI's own handler records
                telemetry.request = request
                telemetry.values = {name: request}
                telemetry.errors = []
            response: Response = await endpoint(request)
            return response

        return handler
