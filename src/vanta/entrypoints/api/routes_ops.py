"""Operations and identity discovery: liveness, readiness, the JWKS and OIDC discovery."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from vanta.entrypoints.api import problems
from vanta.entrypoints.api.deps import ContainerDep

router = APIRouter()


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"])
async def readyz(container: ContainerDep) -> JSONResponse:
    """Readiness: the database answers (a load balancer stops routing here if not)."""
    try:
        await container.ping_database()
    except Exception as e:
        return problems.problem(503, "not_ready", f"database unavailable: {type(e).__name__}")
    return JSONResponse({"status": "ready"})


@router.get("/.well-known/jwks.json", tags=["identity"])
async def jwks(container: ContainerDep) -> dict[str, Any]:
    return container.issuer.jwks()  # type: ignore[no-any-return]


@router.get("/.well-known/openid-configuration", tags=["identity"])
async def discovery(request: Request, container: ContainerDep) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {"issuer": container.settings.jwt_issuer,
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"]}
