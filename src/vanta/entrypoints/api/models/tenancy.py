"""Tenancy bodies: invitations and the OAuth token exchange."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from vanta.entrypoints.api.models.base import WS, RequestModel

# the mailer's rule (``ports.mailer.valid_address``): nothing that could add a recipient
_NOT = f"@{WS}<>\"',;"
EMAIL = rf"^[^{_NOT}]{{1,64}}@[^{_NOT}]{{1,255}}\.[^{_NOT}]{{2,}}$"


class InviteIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"email": "invalid_email", "role": "invalid_role",
                                       "email:missing": "invalid_email",
                                       "*:extra_forbidden": "invalid_body"}

    email: str = Field(pattern=EMAIL, max_length=320)
    role: Literal["owner", "ops", "auditor", "follower"] = "ops"


class AcceptIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"*": "invalid_body", "*:missing": "invalid_body",
                                       "*:extra_forbidden": "invalid_body"}

    oidc_sub: str = Field(min_length=1, max_length=255)


class TokenIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"grant_type": "unsupported_grant_type",
                                       "grant_type:missing": "unsupported_grant_type",
                                       "*": "invalid_body", "*:extra_forbidden": "invalid_body"}

    grant_type: Literal["authorization_code", "client_credentials"]
    client_id: str = ""
    client_secret: str = ""
    code: str = ""
    redirect_uri: str = ""
    code_verifier: str | None = None
    scope: str | None = None
